"""The errors mcdm raises on bad input. The CLI prints them as one line; none leaks a torch traceback."""


class MCDMError(Exception):
    """Base class: something the user can fix (input, checkpoint, plugin, configuration).

    ``usage``: the error is in what the caller asked for (arguments, configuration, inputs); the command line
    exits 2 for these and 1 for what it found (damaged folders, incompatible models, plugins, divergence, memory).
    """

    usage: bool = False


class PluginError(MCDMError):
    """A plugin failed to import, register or validate."""


class UnknownNameError(MCDMError, KeyError):
    """A modality, denoiser type, scheduler or model name that nothing provides."""

    usage = True

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class ConditionError(MCDMError, ValueError):
    """A condition (sketch, mask, caption, ...) that cannot be used as given."""

    usage = True


class CheckpointError(MCDMError):
    """A checkpoint folder that is missing, incomplete, corrupt or not safetensors."""


class IncompatibleModelsError(MCDMError):
    """Two models that cannot be composed: different noise schedule, size, channels or space."""


class ConfigError(MCDMError, ValueError):
    """A composition or training configuration that does not validate."""

    usage = True


class ArgumentError(ConfigError):
    """An argument of a call or a command (steps, seed, weight, count, device, output path) out of its range."""


class ResourceError(MCDMError):
    """The device ran out of memory or failed while generating: change the request or the device."""


class TrainingError(MCDMError):
    """A training run that cannot go on: a non-finite loss or gradient, an unwritable run folder."""


class UnverifiedModelWarning(UserWarning):
    """A model folder loaded without a complete SHA256SUMS (given by path; refused when checksums are required)."""


class NegationWarning(UserWarning):
    """A negative weight (NOT) against the shared prior: it subtracts the model gap eps_i(null) - eps_u as well as
    the condition's direction, which broke the shipped faces; the own baseline subtracts the condition alone."""


class MethodError(ConfigError):
    """A composition method (particles, balanced AND, OR, MALA) that the request's settings or sampler rule out."""
