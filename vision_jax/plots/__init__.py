"""Pictures a researcher looks at: curves and confusion matrices (`charts`), examples with their boxes, masks
and keypoints drawn (`annotations`). Everything renders to PNG through matplotlib's Agg backend."""

from vision_jax.plots.charts import misclassified_figure, plot_confusion_matrix, plot_curves, plot_misclassified
