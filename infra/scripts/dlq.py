#!/usr/bin/env python3
"""Inspect and redrive kefu's dead-letter queues.

Messages land in `<stack>-inbound-dlq.fifo` or `<stack>-outbound-dlq.fifo` after five failed
deliveries. This tool shows what is waiting there (ids, group, receive count, age - never the
customer's text) and moves messages back to their source queue once the cause is fixed.
Every consumer is idempotent by message id, so a redriven message that was in fact handled
has no second effect.

    .venv/bin/python infra/scripts/dlq.py --stack kefu inbound peek
    .venv/bin/python infra/scripts/dlq.py --stack kefu inbound redrive [--max 50] [--dry-run]

Queue URLs come from the stack name (`--stack`, looked up with GetQueueUrl) or explicitly
(`--dlq-url` and `--source-url`). Credentials, region and AWS_ENDPOINT_URL are the usual
SDK settings.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass

import boto3

# Receive attributes needed to describe and re-send a FIFO message.
ATTRIBUTES = [
    "MessageGroupId",
    "MessageDeduplicationId",
    "ApproximateReceiveCount",
    "SentTimestamp",
]
# Envelope fields safe to show: identifiers and metadata, no personal data.
SAFE_FIELDS = ["schema", "message_id", "conversation_id", "channel", "author", "in_reply_to"]


@dataclass
class Queues:
    dlq: str
    source: str


def resolve(sqs, args) -> Queues:
    if args.dlq_url and args.source_url:
        return Queues(args.dlq_url, args.source_url)
    if not args.stack:
        sys.exit("give --stack, or both --dlq-url and --source-url")
    name = f"{args.stack}-{args.which}"
    return Queues(
        sqs.get_queue_url(QueueName=f"{name}-dlq.fifo")["QueueUrl"],
        sqs.get_queue_url(QueueName=f"{name}.fifo")["QueueUrl"],
    )


def receive(sqs, url: str, visibility: int) -> list[dict]:
    return sqs.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=10,
        VisibilityTimeout=visibility,
        WaitTimeSeconds=1,
        MessageSystemAttributeNames=ATTRIBUTES,
    ).get("Messages", [])


def describe(message: dict) -> dict:
    attributes = message.get("Attributes", {})
    sent_ms = int(attributes.get("SentTimestamp", "0"))
    summary = {
        "sqs_message_id": message["MessageId"],
        "group": attributes.get("MessageGroupId"),
        "receive_count": int(attributes.get("ApproximateReceiveCount", "0")),
        "age_seconds": round(time.time() - sent_ms / 1000) if sent_ms else None,
        "body_bytes": len(message["Body"].encode()),
    }
    try:
        body = json.loads(message["Body"])
        summary["envelope"] = {k: body[k] for k in SAFE_FIELDS if k in body}
    except (ValueError, TypeError):
        summary["envelope"] = "unparseable body"
    return summary


def peek(sqs, queues: Queues, limit: int) -> int:
    # A short visibility timeout: peeked messages become visible again almost at once.
    seen = 0
    while seen < limit:
        batch = receive(sqs, queues.dlq, visibility=5)
        if not batch:
            break
        for message in batch[: limit - seen]:
            print(json.dumps(describe(message), ensure_ascii=False))
            seen += 1
    print(f"{seen} message(s) shown from {queues.dlq}", file=sys.stderr)
    return 0


def redrive(sqs, queues: Queues, limit: int, dry_run: bool) -> int:
    moved = 0
    while moved < limit:
        # Long enough to copy a batch; a dry run hides messages only briefly.
        batch = receive(sqs, queues.dlq, visibility=5 if dry_run else 60)
        if not batch:
            break
        for message in batch[: limit - moved]:
            attributes = message.get("Attributes", {})
            summary = describe(message)
            if dry_run:
                print(json.dumps({"would_redrive": summary}, ensure_ascii=False))
                moved += 1
                continue
            # A fresh deduplication id: the original may still be inside SQS's five-minute
            # deduplication window and would be dropped silently. Consumers deduplicate by
            # the message id inside the body.
            dedup = f"{attributes.get('MessageDeduplicationId', message['MessageId'])[:90]}:r{int(time.time())}"
            sqs.send_message(
                QueueUrl=queues.source,
                MessageBody=message["Body"],
                MessageGroupId=attributes["MessageGroupId"],
                MessageDeduplicationId=dedup,
            )
            # Deleted only after the copy is queued: a crash here duplicates, never loses.
            sqs.delete_message(QueueUrl=queues.dlq, ReceiptHandle=message["ReceiptHandle"])
            print(json.dumps({"redriven": summary}, ensure_ascii=False))
            moved += 1
    verb = "would move" if dry_run else "moved"
    print(f"{verb} {moved} message(s) from {queues.dlq} to {queues.source}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", help="stack name (queue names are <stack>-<which>[-dlq].fifo)")
    parser.add_argument("--dlq-url", help="dead-letter queue URL (instead of --stack)")
    parser.add_argument("--source-url", help="source queue URL (instead of --stack)")
    parser.add_argument("which", choices=["inbound", "outbound"], help="which queue pair")
    parser.add_argument("action", choices=["peek", "redrive"])
    parser.add_argument("--max", type=int, default=100, help="at most this many messages (default 100)")
    parser.add_argument("--dry-run", action="store_true", help="redrive: show what would move")
    args = parser.parse_args(argv)

    sqs = boto3.client("sqs")
    queues = resolve(sqs, args)
    if args.action == "peek":
        return peek(sqs, queues, args.max)
    return redrive(sqs, queues, args.max, args.dry_run)


if __name__ == "__main__":
    sys.exit(main())
