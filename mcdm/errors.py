"""The errors mcdm raises on bad input. The CLI prints them as one line; none leaks a torch traceback."""


class MCDMError(Exception):
    """Base class: something the user can fix (input, checkpoint, plugin, configuration)."""


class PluginError(MCDMError):
    """A plugin failed to import, register or validate."""


class UnknownNameError(MCDMError, KeyError):
    """A modality, denoiser type, scheduler or model name that nothing provides."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class ConditionError(MCDMError, ValueError):
    """A condition (sketch, mask, caption, ...) that cannot be used as given."""


class CheckpointError(MCDMError):
    """A checkpoint folder that is missing, incomplete, corrupt or not safetensors."""


class IncompatibleModelsError(MCDMError):
    """Two models that cannot be composed: different noise schedule, size, channels or space."""


class ConfigError(MCDMError, ValueError):
    """A composition or training configuration that does not validate."""


class MethodError(ConfigError):
    """A composition method (particles, balanced AND, OR, MALA) that the request's settings or sampler rule out."""
