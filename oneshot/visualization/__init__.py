from .drawing import (draw_oneshot_result, make_query_panel,
                      make_result_grid, query_thumbnails)
from .local_visualizer import OneShotLocalVisualizer

__all__ = [
    'draw_oneshot_result', 'make_query_panel', 'make_result_grid',
    'query_thumbnails', 'OneShotLocalVisualizer'
]
