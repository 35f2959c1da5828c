"""The simulator's projects, as `GET /api/v2/project/{project-slug}` describes them.

Every project the generator writes into exports gets a Project body (the OpenAPI `Project`
schema) whose `vcs_info.default_branch` is the branch the generator runs its pushes and schedules on,
so the pipeline's default-branch resolution can be tested end to end against it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from usage_assets.circleci.models import project_slug

# The generator has no public listing of its projects, and its internals are being recalibrated
# separately: the project model is read here, read-only, in this one place.
from usage_assets.simulator.synthetic import SyntheticUsage, _org_model

_PROVIDERS = {"gh": "GitHub", "bb": "Bitbucket", "circleci": "CircleCI"}
# The long VCS names the API accepts in a slug as well as the short ones.
_ALIASES = {"github": "gh", "bitbucket": "bb"}


@dataclass(frozen=True)
class SimulatedProject:
    organization_id: str
    organization_name: str
    id: str
    name: str
    vcs_url: str
    default_branch: str

    @property
    def slug(self) -> str:
        return project_slug(self.vcs_url, self.organization_id, self.id)

    def body(self) -> dict[str, Any]:
        slug = self.slug
        vcs, _, rest = slug.partition("/")
        owner = rest.partition("/")[0]
        return {
            "slug": slug,
            "name": self.name,
            "id": self.id,
            "organization_name": self.organization_name,
            "organization_slug": f"{vcs}/{owner}",
            "organization_id": self.organization_id,
            "vcs_info": {
                "vcs_url": self.vcs_url,
                "provider": _PROVIDERS[vcs],
                "default_branch": self.default_branch,
            },
        }


def simulated_projects(usage: SyntheticUsage, org_ids: Iterable[str]) -> list[SimulatedProject]:
    """Every project of the given organizations, in the generator's order."""
    projects: list[SimulatedProject] = []
    for org_id in sorted(org_ids):
        org = _org_model(usage.seed, usage.rows_per_day, org_id)
        projects.extend(
            SimulatedProject(
                organization_id=org.id,
                organization_name=org.name,
                id=p.id,
                name=p.name,
                vcs_url=p.vcs[1],
                default_branch=p.default_branch,
            )
            for p in org.projects
        )
    return projects


class ProjectDirectory:
    """Projects by every slug that names them: `gh/<org>/<repo>` (or `github/...`) and
    `circleci/<organization id>/<project id>`."""

    def __init__(self, projects: Iterable[SimulatedProject]) -> None:
        self._by_slug: dict[str, SimulatedProject] = {}
        for project in projects:
            for slug in (project.slug, f"circleci/{project.organization_id}/{project.id}"):
                self._by_slug.setdefault(slug, project)

    def find(self, slug: str) -> SimulatedProject | None:
        vcs, sep, rest = slug.strip("/").partition("/")
        return self._by_slug.get(f"{_ALIASES.get(vcs, vcs)}{sep}{rest}")
