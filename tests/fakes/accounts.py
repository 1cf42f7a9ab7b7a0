"""The accounts the fake trackers accept: what a test connection signs in with."""

JIRA_EMAIL = "bot@acme.test"
JIRA_TOKEN = "jira-api-token-7Qx"
JIRA_PAT = "jira-dc-pat-5Lm"
JIRA_PROJECT = "SHOP"
JIRA_BOARD = 1
JIRA_WEBHOOK_SECRET = "jira-hook-secret-9Zt"

ADO_ORG = "acme"
ADO_PROJECT = "Shop"
ADO_TEAM = "Shop Team"
ADO_PAT = "ado-pat-3Kd"
ADO_HOOK_USER = "leakseal"
ADO_HOOK_PASSWORD = "ado-hook-secret-2Wq"

CONFLUENCE_EMAIL = "publisher@acme.test"
CONFLUENCE_TOKEN = "confluence-api-token-8Rv"
CONFLUENCE_PAT = "confluence-dc-pat-4Hn"
CONFLUENCE_SPACE = "ENG"
CONFLUENCE_PARENT = "Retrospectives"
