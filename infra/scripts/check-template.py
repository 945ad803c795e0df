#!/usr/bin/env python3
"""Checks template.yaml's least-privilege promises that cfn-lint cannot know:

1. Every function's DynamoDB access is scoped to the key prefixes of the ports its code is
   handed, as shared/src/adapters/aws/dynamo/keys.rs lists them.
2. No secret is resolved into a function's environment ({{resolve:...}}): the environment
   names secrets (KEFU_<SETTING>_SECRET_ID), and a function that names one may read
   secrets (secretsmanager:GetSecretValue) only on named resources, never "*".

Every statement granting a dynamodb: action must carry a
`ForAllValues:StringLike: dynamodb:LeadingKeys` condition, and the prefixes granted on the
table (and on the gsi1 index) must be exactly those of the function's ports below. When a
function is handed another port, add it here and to the template together.

Run with the venv's python (it has cfn-lint's YAML loader): .venv/bin/python THIS
"""
import re
import sys
from pathlib import Path

from cfnlint.decode import cfn_yaml

ROOT = Path(__file__).resolve().parents[2]

# The ports each function's main.rs hands to its handler (the DynamoStore behind them).
PORTS = {
    "WebApiFunction": {"ConversationStore", "Leases"},
    # The bot and the dispatcher count SQS attempts in the idempotency table.
    "BotFunction": {"ConversationStore", "WorkQueue", "IdempotencyGuard"},
    "DispatcherFunction": {"ConversationStore", "IdempotencyGuard"},
    "WechatWebhookFunction": {"IdempotencyGuard"},
    "SmsWebhookFunction": {"IdempotencyGuard"},
    "EmailWebhookFunction": {"IdempotencyGuard"},
    "FaqIndexerFunction": set(),
    "AgentApiFunction": {"ConversationStore", "WorkQueue", "AgentDirectory"},
}
# Ports whose items are found through the gsi1 index rather than the table's key.
INDEX_PORTS = {"WorkQueue"}


def key_prefixes():
    text = (ROOT / "shared/src/adapters/aws/dynamo/keys.rs").read_text()
    table = re.search(r"PARTITION_PREFIXES[^=]*=\s*&\[(.*?)\];", text, re.S)
    if not table:
        sys.exit("keys.rs: PARTITION_PREFIXES not found")
    return dict(re.findall(r'\(\s*"(\w+)",\s*"([A-Z]+#)"\s*\)', table.group(1)))


def statements(policies):
    """Every statement of the inline policies, both branches of an Fn::If included."""
    def unwrap(node):
        if isinstance(node, dict) and "Fn::If" in node:
            for branch in node["Fn::If"][1:]:
                yield from unwrap(branch)
        elif isinstance(node, dict) and node.get("Ref") == "AWS::NoValue":
            return
        elif isinstance(node, dict):
            yield node
    for policy in policies or []:
        if isinstance(policy, dict):
            for statement in policy.get("Statement", []):
                yield from unwrap(statement)


def as_list(value):
    return value if isinstance(value, list) else [value]


def check_secrets(name, resource):
    props = resource["Properties"]
    env = props.get("Environment", {}).get("Variables", {})
    errors = []
    for var, value in env.items():
        if "{{resolve:" in str(value):
            errors.append(f"{name}: {var} resolves a secret into the environment")
    reads = [st for st in statements(props.get("Policies"))
             if "secretsmanager:GetSecretValue" in as_list(st.get("Action", []))]
    for st in reads:
        if "*" in as_list(st.get("Resource")):
            errors.append(f"{name}: {st.get('Sid')} reads every secret")
    named = [var for var in env if var.endswith("_SECRET_ID")]
    if named and not reads:
        errors.append(f"{name}: names secrets {named} but may not read them")
    if reads and not named:
        errors.append(f"{name}: may read secrets but names none")
    return errors


def main():
    prefixes = key_prefixes()
    template = cfn_yaml.load(str(ROOT / "template.yaml"))
    functions = {
        name: r for name, r in template["Resources"].items()
        if r.get("Type") == "AWS::Serverless::Function"
    }
    errors = []
    if set(functions) != set(PORTS):
        errors.append(f"functions in the template {sorted(functions)} != listed {sorted(PORTS)}")
    for port in {p for ports in PORTS.values() for p in ports} - set(prefixes):
        errors.append(f"port {port} has no prefix in keys.rs")
    for name, resource in sorted(functions.items()):
        granted = {"table": set(), "index": set()}
        for st in statements(resource["Properties"].get("Policies")):
            actions = [a for a in as_list(st.get("Action", [])) if a.startswith("dynamodb:")]
            if not actions:
                continue
            leading = (st.get("Condition", {}).get("ForAllValues:StringLike", {})
                       .get("dynamodb:LeadingKeys"))
            if not leading:
                errors.append(f"{name}: {st.get('Sid')} grants {actions} without LeadingKeys")
                continue
            resources = as_list(st.get("Resource"))
            on_index = all("Fn::Sub" in r and "/index/" in str(r["Fn::Sub"]) for r in resources)
            for value in as_list(leading):
                # A prefix of keys.rs, or a narrower one under it (IDEM#wechat-nonce:*).
                prefix = value.split("#", 1)[0] + "#"
                if not value.endswith("*") or prefix not in prefixes.values():
                    errors.append(f"{name}: LeadingKeys {value} is no keys.rs prefix")
                granted["index" if on_index else "table"].add(prefix)
        ports = PORTS.get(name, set())
        wanted = {
            "table": {prefixes[p] for p in ports - INDEX_PORTS if p in prefixes},
            "index": {prefixes[p] for p in ports & INDEX_PORTS if p in prefixes},
        }
        for where in ("table", "index"):
            if granted[where] != wanted[where]:
                errors.append(f"{name}: {where} prefixes {sorted(granted[where])}, "
                              f"its ports {sorted(ports)} need {sorted(wanted[where])}")
        print(f"{name}: table {sorted(granted['table'])} index {sorted(granted['index'])}")
        errors.extend(check_secrets(name, resource))
    if errors:
        print("\n".join(errors), file=sys.stderr)
        sys.exit(1)
    print("template: DynamoDB access matches keys.rs; secrets are named, not resolved")


if __name__ == "__main__":
    main()
