from .nonfinite_loss_hook import NonFiniteLossError, NonFiniteLossHook

__all__ = ['NonFiniteLossHook', 'NonFiniteLossError']
