"""The programming delay: how long the simulated GKE takes to program one change.

GKE's delay is not a constant: each change takes its own time to reach the load balancer
(seconds to minutes). A fixed delay (`2`) lets a gate that sleeps a fixed time pass by luck;
a range (`2:8`) draws each change's delay uniformly between the bounds, from a random
generator seeded once per gateway process, so a run's sequence of delays can be replayed.
"""

import random
from dataclasses import dataclass

DEFAULT_SEED = 1


@dataclass(frozen=True)
class ProgrammingDelay:
    low: float
    high: float

    @classmethod
    def parse(cls, value):
        """`2`, `2.5`, "2" (fixed) or "2:8" (uniform per change); a ValueError names the accepted forms."""
        if isinstance(value, ProgrammingDelay):
            return value
        text = str(value).strip()
        parts = text.split(":")
        try:
            if len(parts) > 2:
                raise ValueError
            low, high = float(parts[0]), float(parts[-1])
        except ValueError:
            raise ValueError(f"programming delay {text!r}: give SECONDS (2) or LOW:HIGH seconds (2:8)") from None
        if low < 0 or high < low:
            raise ValueError(f"programming delay {text!r}: give SECONDS >= 0 or LOW:HIGH with 0 <= LOW <= HIGH")
        return cls(low, high)

    @property
    def variable(self):
        return self.high > self.low

    @property
    def spec(self):
        """How info.json, the env file and the gateway's command line carry it: a number when fixed
        (as before ranges existed), "LOW:HIGH" when variable."""
        return f"{self.low:g}:{self.high:g}" if self.variable else self.low

    def drawer(self, seed=DEFAULT_SEED):
        """A function giving the delay of each successive change."""
        if not self.variable:
            return lambda: self.low
        generator = random.Random(seed)
        return lambda: generator.uniform(self.low, self.high)
