from .drawing import draw_oneshot_result, make_result_grid

__all__ = ['draw_oneshot_result', 'make_result_grid']
