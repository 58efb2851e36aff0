"""One module per kubectl write verb or verb family, each registering its :class:`VerbSpec` entries.

Importing this package fills ``stratus.tools.kubectl.registry.VERBS``. To add a verb, add a module
here that calls ``register`` and list it below.
"""

from stratus.tools.kubectl.verbs import (  # noqa: F401  (imported for their registrations)
    apply,
    delete,
    exec,
    label,
    node,
    patch,
    rollout,
    scale,
    set,
)
