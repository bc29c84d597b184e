"""Code that runs inside the compiled training step, around the optimizer's ``apply_gradients``.

What pruning must do at every step (sum Taylor scores from the step's gradients, zero pruned
channels again after the update) runs here rather than in a per-batch callback, so
``training.fit`` can run a whole epoch per call of the train function (steps_per_execution)
and the step is the same either way. Hooks chain: ``add(model, owner, hook)`` puts
``hook(apply, grads_and_vars, *args, **kwargs)`` around the apply of the hooks added before it
(the innermost is the optimizer's own), each calling ``apply`` once; ``remove`` takes one out
and, when none is left, the optimizer is itself again. Either changes what the train function
runs, so both drop the model's traced one.
"""

import functools


def _hooks(optimizer):
    """{owner: hook} of ``optimizer``, in the order they were added (empty when none)."""
    return dict(getattr(vars(optimizer).get("apply_gradients"), "step_hooks", {}))


def _install(optimizer, hooks):
    vars(optimizer).pop("apply_gradients", None)
    if not hooks:
        return
    apply = type(optimizer).apply_gradients.__get__(optimizer)
    for hook in hooks.values():
        apply = functools.partial(hook, apply)

    def apply_gradients(*args, **kwargs):
        return apply(*args, **kwargs)

    apply_gradients.step_hooks = hooks
    optimizer.apply_gradients = apply_gradients


def add(model, owner, hook):
    """Run ``hook`` around ``model.optimizer``'s apply_gradients (again: replaces ``owner``'s)."""
    optimizer = model.optimizer
    hooks = _hooks(optimizer)
    hooks.pop(owner, None)
    hooks[owner] = hook
    _install(optimizer, hooks)
    model.train_function = None  # a function traced before would run without the hook
    return optimizer


def remove(model, optimizer, owner):
    """Take ``owner``'s hook off ``optimizer`` (the one ``add`` returned)."""
    hooks = _hooks(optimizer)
    if hooks.pop(owner, None) is not None:
        _install(optimizer, hooks)
        model.train_function = None
