"""``JobConfig``, what every job config does when it is built: each declared field is checked
against its declaration (tfprune.declare.check_declared: bounds, allowed names), then the
config's ``resolve`` (after which the declarations are checked again, on the resolved values) checks what depends on several fields and fills in what depends on other
fields (a data set's epochs, 'auto' augmentation, a one-shot run's schedule). What resolving
changed is kept: ``asked`` maps each such field to the value that was asked, and config.json
records both (``record``), so it says what the user asked and what it became."""

import dataclasses

from tfprune import declare


@dataclasses.dataclass
class JobConfig:

    def __post_init__(self):
        before = declare.asked(self)
        declare.check_declared(self)
        self.resolve()
        declare.check_declared(self)  # what resolving filled in (a data set's values) too
        self.asked = declare.changed(before, self)

    def resolve(self):
        """Cross-field checks and the values resolved from other fields (in place)."""

    def to_dict(self):
        """The fields, resolved (``type(config)(**config.to_dict())`` is the same config)."""
        return dataclasses.asdict(self)

    def record(self):
        """What a run writes as config.json: the resolved fields, and under "asked" the asked
        values that resolving replaced (run directories compare the resolved fields only:
        jobs/rundir.py)."""
        return dict(self.to_dict(), asked=dict(self.asked))
