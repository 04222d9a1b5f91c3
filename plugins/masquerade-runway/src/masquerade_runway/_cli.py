"""``masquerade runway ...``: custom avatars, knowledge documents and conversations from a
shell (the ``runway`` plugin offers it through ``masquerade_register_commands``).

Reads ``RUNWAYML_API_SECRET`` and ``RUNWAYML_BASE_URL`` like the provider. Lists print
one line per item (``id  status  name``) or, with ``--json``, the API's objects; ``create``
prints the new id alone, so a script can keep it::

    DOC=$(masquerade runway documents create --name FAQ --file faq.md)
    AVATAR=$(masquerade runway avatars create --name Ada --image ada.png --voice clara \\
             --personality "You are Ada." --document "$DOC" --wait)
    masquerade runway conversations download SESSION_ID call.mp4
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from pydantic import BaseModel

if TYPE_CHECKING:
    from ._client import RunwayClient

HELP = "Runway custom avatars, knowledge documents and conversations"

Action = Callable[["RunwayClient", argparse.Namespace], Awaitable[int]]
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--base-url", help="the API base (default: RUNWAYML_BASE_URL, else Runway's)"
    )
    resources = parser.add_subparsers(dest="resource", metavar="RESOURCE", required=True)

    avatars = _resource(resources, "avatars", "custom avatars")
    _list_and_get(avatars, "avatar", lambda a: (a.id, a.status or "", a.name or ""))
    create = _command(avatars, "create", "create an avatar; prints its id")
    create.add_argument("--name", required=True)
    create.add_argument("--personality", required=True, help="what the avatar is told")
    create.add_argument(
        "--image", required=True, help="reference image: a file (uploaded) or an https URL"
    )
    create.add_argument("--voice", required=True, help="a preset voice (clara, leo...)")
    create.add_argument("--custom-voice", action="store_true", help="--voice is a voice id")
    create.add_argument("--start-script", help="the opening line")
    create.add_argument(
        "--document", action="append", default=[], help="a document id to attach (repeat)"
    )
    create.add_argument("--wait", action="store_true", help="wait until it is READY")
    create.set_defaults(_action=_avatars_create)
    update = _command(avatars, "update", "change an avatar; prints it as JSON")
    update.add_argument("avatar_id")
    update.add_argument("--name")
    update.add_argument("--personality")
    update.add_argument("--image", help="a new reference image (file or https URL)")
    update.add_argument("--voice", help="a preset voice")
    update.add_argument("--start-script")
    update.add_argument(
        "--document", action="append", help="the attached documents, replacing all (repeat)"
    )
    update.set_defaults(_action=_avatars_update)
    _delete(avatars, "avatar", "delete avatars", "deleted {}")
    usage = _command(avatars, "usage", "conversations and seconds per day, as JSON")
    usage.add_argument("--start", required=True, help="first day (YYYY-MM-DD)")
    usage.add_argument("--end", required=True, help="day after the last (at most 90 days)")
    usage.set_defaults(_action=_avatars_usage)

    documents = _resource(resources, "documents", "knowledge documents")
    _list_and_get(
        documents,
        "document",
        lambda d: (d.id, ",".join(u.name or u.id for u in d.used_by), d.name or ""),
    )
    create = _command(documents, "create", "create a document; prints its id")
    create.add_argument("--name", required=True)
    create.add_argument("--file", required=True, help="markdown or text file ('-': stdin)")
    create.set_defaults(_action=_documents_create)
    update = _command(documents, "update", "rename a document or replace its content")
    update.add_argument("document_id")
    update.add_argument("--name")
    update.add_argument("--file", help="new content ('-': stdin)")
    update.set_defaults(_action=_documents_update)
    _delete(documents, "document", "delete documents (detached from avatars)", "deleted {}")

    conversations = _resource(resources, "conversations", "conversations (one per session)")
    download = _command(conversations, "download", "save a conversation's recording")
    download.add_argument("session_id")
    download.add_argument("path", help="where to write the recording")
    download.set_defaults(_action=_conversations_download)
    _delete(
        conversations,
        "session",
        "erase conversations: transcript and recording",
        "deleted the conversation of {}",
        resource="conversations",
    )


def _command(commands: Commands, name: str, text: str) -> argparse.ArgumentParser:
    return commands.add_parser(name, help=text, description=text[:1].upper() + text[1:] + ".")


def _resource(resources: Commands, name: str, text: str) -> Commands:
    return _command(resources, name, text).add_subparsers(
        dest="action", metavar="ACTION", required=True
    )


def _list_and_get(commands: Commands, noun: str, row: Callable[[Any], tuple[str, ...]]) -> None:
    """``list`` (one ``row`` per item, or ``--json``) and ``get`` of ``client.<noun>s``."""
    resource = f"{noun}s"

    async def listing(client: RunwayClient, args: argparse.Namespace) -> int:
        items = [item async for item in getattr(client, resource).iter(limit=100)]
        if args.json:
            _print_json(items)
        else:
            _print_rows([row(item) for item in items])
        return 0

    async def get(client: RunwayClient, args: argparse.Namespace) -> int:
        _print_json(await getattr(client, resource).retrieve(getattr(args, f"{noun}_id")))
        return 0

    parser = _command(commands, "list", f"list {resource}, one per line (id, ..., name)")
    parser.add_argument("--json", action="store_true", help="print the API's objects")
    parser.set_defaults(_action=listing)
    parser = _command(commands, "get", f"one {noun}, as JSON")
    parser.add_argument(f"{noun}_id")
    parser.set_defaults(_action=get)


def _delete(
    commands: Commands, noun: str, text: str, done: str, *, resource: str | None = None
) -> None:
    """``delete ID...`` of ``client.<resource>`` (default ``<noun>s``); prints ``done``
    formatted with each id."""
    resource = resource or f"{noun}s"

    async def delete(client: RunwayClient, args: argparse.Namespace) -> int:
        for item_id in getattr(args, f"{noun}_ids"):
            await getattr(client, resource).delete(item_id)
            print(done.format(item_id))
        return 0

    parser = _command(commands, "delete", text)
    parser.add_argument(f"{noun}_ids", nargs="+", metavar=f"{noun}_id")
    parser.set_defaults(_action=delete)


def run(args: argparse.Namespace) -> int:
    import anyio

    from ._client import RunwayClient

    action: Action = args._action

    async def main() -> int:
        async with RunwayClient(base_url=args.base_url) as client:
            return await action(client, args)

    return anyio.run(main)


# ---------------------------------------------------------------- output
def _print_json(value: BaseModel | Sequence[BaseModel]) -> None:
    if not isinstance(value, BaseModel):
        data: Any = [item.model_dump(mode="json", by_alias=True) for item in value]
    else:
        data = value.model_dump(mode="json", by_alias=True)
    print(json.dumps(data, indent=2))


def _print_rows(rows: list[tuple[str, ...]]) -> None:
    for row in rows:
        print("  ".join(cell or "-" for cell in row))


def _read(path: str) -> str:
    return sys.stdin.read() if path == "-" else Path(path).read_text()


def _image(value: str) -> str | Path:
    return value if value.startswith(("https://", "runway://", "data:")) else Path(value)


# ---------------------------------------------------------------- avatars
async def _avatars_create(client: RunwayClient, args: argparse.Namespace) -> int:
    from ._models import CustomVoice

    avatar = await client.avatars.create(
        name=args.name,
        personality=args.personality,
        reference_image=_image(args.image),
        voice=CustomVoice(id=args.voice) if args.custom_voice else args.voice,
        document_ids=args.document or None,
        start_script=args.start_script,
    )
    if args.wait:
        await client.avatars.wait_ready(avatar.id)
    print(avatar.id)
    return 0


async def _avatars_update(client: RunwayClient, args: argparse.Namespace) -> int:
    changes: dict[str, Any] = {}
    for name in ("name", "personality", "voice", "start_script"):
        if getattr(args, name) is not None:
            changes[name] = getattr(args, name)
    if args.image is not None:
        changes["reference_image"] = _image(args.image)
    if args.document is not None:
        changes["document_ids"] = args.document
    _print_json(await client.avatars.update(args.avatar_id, **changes))
    return 0


async def _avatars_usage(client: RunwayClient, args: argparse.Namespace) -> int:
    _print_json(await client.avatars.usage(start_date=args.start, end_date=args.end))
    return 0


# ---------------------------------------------------------------- documents
async def _documents_create(client: RunwayClient, args: argparse.Namespace) -> int:
    document = await client.documents.create(name=args.name, content=_read(args.file))
    print(document.id)
    return 0


async def _documents_update(client: RunwayClient, args: argparse.Namespace) -> int:
    content = _read(args.file) if args.file is not None else None
    await client.documents.update(args.document_id, name=args.name, content=content)
    print(f"updated {args.document_id}")
    return 0


# ---------------------------------------------------------------- conversations
async def _conversations_download(client: RunwayClient, args: argparse.Namespace) -> int:
    size = await client.conversations.download_recording(args.session_id, args.path)
    print(f"wrote {size} bytes to {args.path}")
    return 0
