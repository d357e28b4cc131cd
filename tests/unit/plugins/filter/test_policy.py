"""plugins/filter/policy.py: every host's policy checked once, by the policy engine's rules."""

from __future__ import annotations

from ansible_collections.netmedic.remediation.plugins.filter.policy import FilterModule

POLICY_PROBLEMS = FilterModule().filters()["policy_problems"]


def test_each_problem_names_its_host_and_a_usable_policy_has_none() -> None:
    problems = POLICY_PROBLEMS(
        {
            "ok": {"auto": ["port_conflicts"], "allow_destructive": [], "max_fixes": 2},
            "unset": {},
            "string": {"allow_destructive": "some-id"},
            "yes": "yes",
        }
    )
    assert problems == [
        "string: netmedic_policy.allow_destructive must be a list of finding ids, got the string"
        " 'some-id'",
        "yes: netmedic_policy must be a mapping of auto, allow_destructive, max_fixes,"
        " window_hours, got str 'yes'",
    ]
