"""A fair queue over users: each user's jobs in submission order, users served in turn.

Hand-written (40 lines) because the rule is ours: a user with a hundred queued jobs must not
hold back another user's one, and a user at their ``jobs`` quota is skipped, not waited for.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable


class FairQueue:
    """Round robin across users; FIFO within a user."""

    def __init__(self) -> None:
        #: users in the order they will next be served; each with their queued job ids
        self._users: OrderedDict[str, deque[str]] = OrderedDict()

    def __len__(self) -> int:
        return sum(len(q) for q in self._users.values())

    def push(self, user: str, job_id: str) -> None:
        self._users.setdefault(user, deque()).append(job_id)

    def remove(self, job_id: str) -> bool:
        """Take a queued job out (cancelled); False if it was not queued."""
        for user, jobs in self._users.items():
            if job_id in jobs:
                jobs.remove(job_id)
                if not jobs:
                    del self._users[user]
                return True
        return False

    def pop(self, may_start: Callable[[str], bool]) -> tuple[str, str] | None:
        """The next (user, job id) whose user ``may_start`` another job, or None. The user
        served goes to the back of the line."""
        for user in list(self._users):
            if not may_start(user):
                continue
            jobs = self._users.pop(user)
            job_id = jobs.popleft()
            if jobs:
                self._users[user] = jobs  # re-inserted at the end: the others go first
            return user, job_id
        return None

    def queued(self, user: str) -> list[str]:
        return list(self._users.get(user, ()))
