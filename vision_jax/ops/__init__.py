"""Detection ops as pure JAX functions: boxes and IoUs, box coding, anchors, matching, NMS, RoIAlign/RoIPool.

Boxes are float arrays `[..., 4]`, xyxy in pixels unless a function says otherwise. Variable-length results
(NMS keeps) are padded to a static size with -1 and come with a valid count, so every op is jit-able and
vmap-able. `nms`, `batched_nms` and `roi_align` dispatch to Pallas kernels (`ops/pallas/`) on GPU/TPU.
"""

from vision_jax.ops.anchors import grid_anchors
from vision_jax.ops.anchors import kmeans_anchors
from vision_jax.ops.anchors import mean_best_iou
from vision_jax.ops.anchors import multibox_prior
from vision_jax.ops.anchors import ssd_default_boxes
from vision_jax.ops.anchors import wh_iou
from vision_jax.ops.box_coding import faster_rcnn_decode
from vision_jax.ops.box_coding import faster_rcnn_encode
from vision_jax.ops.box_coding import ssd_decode
from vision_jax.ops.box_coding import ssd_encode
from vision_jax.ops.box_coding import yolo_decode
from vision_jax.ops.box_coding import yolo_encode
from vision_jax.ops.boxes import box_area
from vision_jax.ops.boxes import box_iou
from vision_jax.ops.boxes import clip_boxes
from vision_jax.ops.boxes import complete_box_iou
from vision_jax.ops.boxes import convert_boxes
from vision_jax.ops.boxes import cxcywh_to_xyxy
from vision_jax.ops.boxes import distance_box_iou
from vision_jax.ops.boxes import elementwise_box_iou
from vision_jax.ops.boxes import elementwise_complete_box_iou
from vision_jax.ops.boxes import elementwise_distance_box_iou
from vision_jax.ops.boxes import elementwise_generalized_box_iou
from vision_jax.ops.boxes import generalized_box_iou
from vision_jax.ops.boxes import remove_small_boxes
from vision_jax.ops.boxes import xywh_to_xyxy
from vision_jax.ops.boxes import xyxy_to_cxcywh
from vision_jax.ops.boxes import xyxy_to_xywh
from vision_jax.ops.matching import greedy_match
from vision_jax.ops.matching import IGNORE
from vision_jax.ops.matching import iou_match
from vision_jax.ops.matching import NEGATIVE
from vision_jax.ops.matching import yolo_grid_assign
from vision_jax.ops.nms import batched_nms
from vision_jax.ops.nms import nms
from vision_jax.ops.nms import soft_nms
from vision_jax.ops.roi_align import fpn_levels
from vision_jax.ops.roi_align import multilevel_roi_align
from vision_jax.ops.roi_align import roi_align
from vision_jax.ops.roi_pool import roi_pool
