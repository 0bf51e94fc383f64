"""Session-state keys shared by pages (one place, no retyped strings)."""

from __future__ import annotations

__all__ = ["BEAT", "DISTRICT", "PLAN_PROPOSAL", "PLAN_PROPOSAL_KEY", "SECTOR"]

#: The beat the user picked last (any page).
BEAT = "selected_beat"
#: The sector the user picked last.
SECTOR = "selected_sector"
#: The district the user picked last.
DISTRICT = "selected_district"
#: The last beat plan proposal of the Beat planning page (kept until the next one).
PLAN_PROPOSAL = "beat_planning_proposal"
#: (store version, workload period) the proposal was made from: a new import drops it.
PLAN_PROPOSAL_KEY = "beat_planning_proposal_key"
