"""Rules with reasons, and the route-sales policy.

A rule looks at a :class:`RuleContext` (a Book at a point in time, with the holdings at that time)
and returns :class:`Blocks`: which clients, products or (client, product) pairs it blocks, for
which offer types, with one sentence per row that an account manager can read aloud. A
:class:`Policy` unions the blocks of its rules into a :class:`Suppression`: the masks the
recommender applies, and the log that ``why_not`` answers from.

Every rule reads only data dated on or before ``as_of``: an event after it does not exist yet, and
a complaint closed after it is still open. Rules work on whole arrays; none loops over clients.
"""

from crosssell.rules._applicability import OpenComplaint, RenewalFirst
from crosssell.rules._base import FunctionRule, Reads, Rule, rule
from crosssell.rules._blocks import Blocks, Scope

# The array aliases of the rule signatures stay importable from here, as before the split.
from crosssell.rules._common import BoolArray as BoolArray
from crosssell.rules._common import IntArray as IntArray
from crosssell.rules._common import TextArray as TextArray
from crosssell.rules._contact import ContactCap, DoNotContact, RecentDecline
from crosssell.rules._context import RuleContext
from crosssell.rules._eligibility import (
    AlreadyHeld,
    ExcludedByHolding,
    GroupHeld,
    NotSellable,
    PrerequisiteMissing,
    SegmentNotEligible,
)
from crosssell.rules._policy import Policy, route_sales
from crosssell.rules._suitability import (
    ChurnSignal,
    LowSatisfaction,
    NotWorthProposing,
    RetainFirst,
    SleepingDog,
)
from crosssell.rules._suppression import Suppression

__all__ = [
    "AlreadyHeld",
    "Blocks",
    "ChurnSignal",
    "ContactCap",
    "DoNotContact",
    "ExcludedByHolding",
    "FunctionRule",
    "GroupHeld",
    "LowSatisfaction",
    "NotSellable",
    "NotWorthProposing",
    "OpenComplaint",
    "Policy",
    "PrerequisiteMissing",
    "Reads",
    "RecentDecline",
    "RenewalFirst",
    "RetainFirst",
    "Rule",
    "RuleContext",
    "Scope",
    "SegmentNotEligible",
    "SleepingDog",
    "Suppression",
    "route_sales",
    "rule",
]
