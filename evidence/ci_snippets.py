"""The "Send test results from CI" page's lines: this team's URL and stages, each CI tool's own
variables for the commit, the branch and the run's URL, and the token from a secret."""

from __future__ import annotations

import shlex
from dataclasses import dataclass


@dataclass(frozen=True)
class Snippet:
    tool: str
    where: str  # where it goes, in the tool's words
    code: str


def _field(name: str, value: str) -> str:
    """One -F argument for sh, quoted only when needed (a stage name with a space)."""
    return f"-F {shlex.quote(f'{name}={value}')}"


def curl_line(url: str, stage: str) -> str:
    return (
        'curl -fsS -H "Authorization: Bearer $LEAKSEAL_TOKEN" \\\n'
        f'  {_field("stage", stage)} -F commit="$COMMIT" -F branch="$BRANCH" \\\n'
        '  -F run_url="$RUN_URL" -F file=@results.xml \\\n'
        f"  {url}"
    )


def snippets(url: str, stage: str) -> list[Snippet]:
    stage_arg = _field("stage", stage)
    return [
        Snippet(
            "GitHub Actions",
            "a step after the tests in your workflow; the token in the repository's secret "
            "LEAKSEAL_TOKEN",
            "- name: Send test results to Leakseal\n"
            "  if: ${{ !cancelled() }}\n"
            "  env:\n"
            "    LEAKSEAL_TOKEN: ${{ secrets.LEAKSEAL_TOKEN }}\n"
            "  run: |\n"
            '    curl -fsS -H "Authorization: Bearer $LEAKSEAL_TOKEN" \\\n'
            f'      {stage_arg} -F commit="$GITHUB_SHA" -F branch="$GITHUB_REF_NAME" \\\n'
            '      -F run_url="$GITHUB_SERVER_URL/$GITHUB_REPOSITORY/actions/runs/$GITHUB_RUN_ID"'
            " \\\n"
            "      -F file=@results.xml \\\n"
            f"      {url}",
        ),
        Snippet(
            "GitLab CI",
            "the test job's after_script in .gitlab-ci.yml; the token in a masked CI/CD "
            "variable LEAKSEAL_TOKEN",
            "unit-tests:\n"
            "  script:\n"
            "    - make test  # writes results.xml\n"
            "  after_script:\n"
            "    - >\n"
            '      curl -fsS -H "Authorization: Bearer $LEAKSEAL_TOKEN"\n'
            f'      {stage_arg} -F commit="$CI_COMMIT_SHA" -F branch="$CI_COMMIT_REF_NAME"\n'
            '      -F run_url="$CI_JOB_URL" -F file=@results.xml\n'
            f"      {url}",
        ),
        Snippet(
            "Jenkins",
            "the Jenkinsfile's post section (an sh step); the token in a Secret text "
            "credential leakseal-token",
            "post {\n"
            "  always {\n"
            "    withCredentials([string(credentialsId: 'leakseal-token', "
            "variable: 'LEAKSEAL_TOKEN')]) {\n"
            "      sh '''\n"
            '        curl -fsS -H "Authorization: Bearer $LEAKSEAL_TOKEN" \\\n'
            f'          {stage_arg} -F commit="$GIT_COMMIT" -F branch="$BRANCH_NAME" \\\n'
            '          -F run_url="$BUILD_URL" -F file=@results.xml \\\n'
            f"          {url}\n"
            "      '''\n"
            "    }\n"
            "  }\n"
            "}",
        ),
        Snippet(
            "Azure Pipelines",
            "a script step after the tests in azure-pipelines.yml; the token in a secret "
            "pipeline variable LEAKSEAL_TOKEN",
            "- script: |\n"
            '    curl -fsS -H "Authorization: Bearer $LEAKSEAL_TOKEN" \\\n'
            f'      {stage_arg} -F commit="$BUILD_SOURCEVERSION"'
            ' -F branch="$BUILD_SOURCEBRANCHNAME" \\\n'
            '      -F run_url="$(System.CollectionUri)$(System.TeamProject)'
            '/_build/results?buildId=$(Build.BuildId)" \\\n'
            "      -F file=@results.xml \\\n"
            f"      {url}\n"
            "  displayName: Send test results to Leakseal\n"
            "  condition: succeededOrFailed()\n"
            "  env:\n"
            "    LEAKSEAL_TOKEN: $(LEAKSEAL_TOKEN)",
        ),
    ]
