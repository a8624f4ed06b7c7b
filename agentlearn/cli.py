"""The command line: `python -m agentlearn ...`. Same functions as the dashboard, AGENTLEARN_HOME as the store."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from agentlearn import methods
from agentlearn.methods import EXPORT_KINDS, PROPOSAL_SOURCES, TRAINING_METHODS, USES_INSIGHTS
from agentlearn.settings import Settings
from agentlearn.traces import cli as traces_cli
from agentlearn.workspace import open_workspace
from storage import StoreError, is_database_url, open_repository
from storage.postgres_store import redact
from storage.transfer import Location, backup_store, copy_store


def _print_json(obj: object) -> None:
    print(json.dumps(obj, indent=None, default=str))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m agentlearn",
                                description="Make an LLM agent learn from experience, with people in the loop.")
    sub = p.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="create the demo workspace (suite, runs, labels) if it is missing")
    demo.add_argument("--runs", type=int, default=None,
                      help="train tasks run with and without exemplars on first creation (default: 3 of each of "
                           "the 4 most used tools)")
    demo.set_defaults(func=cmd_demo)

    tasks = sub.add_parser("tasks", help="import and list task suites").add_subparsers(dest="action", required=True)
    imp = tasks.add_parser("import", help="import tool-calling tasks from a JSONL file or a BFCL category")
    imp.add_argument("file", help="the task file; with --format bfcl also a BFCL category name, e.g. simple_python")
    imp.add_argument("--format", dest="fmt", default="jsonl",
                     help="jsonl (one task a line, see agentlearn/tasks.py) or bfcl (a BFCL question file or category)")
    imp.add_argument("--answers", default="", help="bfcl: the possible-answer file (default: the package's, or "
                                                   "possible_answer/ beside the question file)")
    imp.add_argument("--suite", default="", help="suite name (required unless the card names the suite)")
    imp.add_argument("--heldout", type=float, default=0.5, help="fraction held out for evaluation (default 0.5)")
    imp.add_argument("--card", default="", help="suite card, YAML or JSON: name, description, instruction, tools, "
                                                "arg_kinds (tool -> argument -> kind)")
    imp.add_argument("--instruction", default="", help="the agent's role and rules for this suite (wins over the card)")
    imp.add_argument("--description", default="", help="what the suite is about (wins over the card)")
    imp.set_defaults(func=cmd_tasks_import)
    ls = tasks.add_parser("list", help="list suites and their task counts")
    ls.set_defaults(func=cmd_tasks_list)
    traces_cli.add_parser(sub)

    suite = sub.add_parser("suite", help="show or edit a suite's card").add_subparsers(dest="action", required=True)
    sh = suite.add_parser("show", help="name, description, instruction, tools and argument kinds")
    sh.add_argument("name")
    sh.add_argument("--json", action="store_true", help="print one JSON object")
    sh.set_defaults(func=cmd_suite_show)
    ed = suite.add_parser("edit", help="change the instruction, description or argument kinds")
    ed.add_argument("name")
    ed.add_argument("--instruction", default=None, help="new instruction ('' for the default one)")
    ed.add_argument("--description", default=None, help="new description")
    ed.add_argument("--kind", action="append", default=[], metavar="TOOL.ARG=KIND",
                    help="set an argument's kind: categorical, extractive or free_text (repeatable); "
                         "setting the inferred kind removes the override")
    ed.set_defaults(func=cmd_suite_edit)

    run = sub.add_parser("run", help="run the agent on a suite split and store the trajectories")
    methods.add_arguments(run, methods.RUN)
    run.add_argument("--split", default="train", choices=["train", "heldout"])
    run.add_argument("--json", action="store_true", help="print one JSON object per task: its steps and verdict")
    run.set_defaults(func=cmd_run)

    rep = sub.add_parser("replay", help="replay a run from the step a correction fixed, with the corrected call")
    rep.add_argument("correction", help="the correction's id (Trajectories shows it)")
    rep.set_defaults(func=cmd_replay)

    suites = sub.add_parser("suites", help="where a suite's tools run (admins)").add_subparsers(
        dest="action", required=True)
    bind = suites.add_parser("bind", help="bind a suite's tools to a Python function or module, an environment "
                                          "class or a stdio MCP server")
    bind.add_argument("suite")
    target = bind.add_mutually_exclusive_group(required=True)
    target.add_argument("--python", metavar="MOD[:FUNC]", help="a module whose functions carry the tools' names, "
                                                                "or one function")
    target.add_argument("--environment", metavar="NAME", help="an environment class (one instance per episode)")
    target.add_argument("--mcp", metavar="CMD", help="the command line of a stdio MCP server")
    bind.add_argument("--tools", default="", help="comma-separated tools it serves (default: all)")
    bind.add_argument("--timeout", type=float, default=10.0, help="seconds a call may take (default 10)")
    bind.set_defaults(func=cmd_suites_bind)
    unbind = suites.add_parser("unbind", help="stop running a suite's tools (all, or --tools)")
    unbind.add_argument("suite")
    unbind.add_argument("--tools", default="", help="comma-separated tools to unbind (default: all)")
    unbind.set_defaults(func=cmd_suites_unbind)

    ins = sub.add_parser("insights", help="the playbook: proposals, review, bullets").add_subparsers(
        dest="action", required=True)
    prop = ins.add_parser("propose", help="propose playbook changes from the suite's train runs (for review)")
    prop.add_argument("--suite", required=True)
    prop.add_argument("--sources", default="",
                      help=f"comma-separated, in order: {', '.join(PROPOSAL_SOURCES)} (default: errors on the "
                           "embedded model, all with an OpenAI-compatible one)")
    prop.add_argument("--json", action="store_true", help="print the proposals as one JSON array")
    prop.set_defaults(func=cmd_insights_propose)
    lsi = ins.add_parser("list", help="bullets (by rank) or proposals of a suite")
    lsi.add_argument("--suite", required=True)
    lsi.add_argument("--status", default="active", choices=["active", "removed", "pending", "approved", "rejected"],
                     help="active/removed: bullets; pending/approved/rejected: proposals")
    lsi.add_argument("--json", action="store_true", help="one JSON array")
    lsi.set_defaults(func=cmd_insights_list)
    apr = ins.add_parser("approve", help="approve pending proposals, oldest first")
    apr.add_argument("--suite", required=True)
    apr.add_argument("--all", action="store_true", required=True, help="every pending proposal of the suite")
    apr.add_argument("--by", default="", help="the reviewer's name, recorded on each change: without accounts any "
                                              "name; with accounts the account AGENTLEARN_USER signs in")
    apr.set_defaults(func=cmd_insights_approve)

    ev = sub.add_parser("eval", help="evaluate a method (or adapter) on held-out tasks and store the result")
    methods.add_arguments(ev, methods.EVAL)
    ev.add_argument("--split", default="heldout", choices=["train", "heldout"])
    ev.add_argument("--repeats", type=int, default=1,
                    help="run N times with sampling and a shuffled shot order, and report the spread")
    ev.add_argument("--baseline", default="none",
                    help="compare with this method's latest run on the same tasks and decoding ('' for none)")
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    ev.set_defaults(func=cmd_eval)

    cu = sub.add_parser("curve", help="measure held-out accuracy against the number of experiences in the bank")
    methods.add_arguments(cu, methods.CURVE)
    cu.add_argument("--sizes", default="0,4,8,16,all", help="bank sizes, comma separated (default 0,4,8,16,all)")
    cu.add_argument("--draws", type=int, default=3, help="random draws of the bank per size (default 3)")
    cu.add_argument("--json", action="store_true", help="print one JSON object")
    cu.set_defaults(func=cmd_curve)

    ad = sub.add_parser("adapters", help="trained LoRA adapters: list them, choose a suite's model, roll back")
    ad.set_defaults(func=cmd_adapters)
    ad_sub = ad.add_subparsers(dest="action")
    ad_sub.add_parser("list", help="list trained adapters (the default)").set_defaults(func=cmd_adapters)
    use = ad_sub.add_parser("use", help="make an adapter the suite's model (id, its job's id, folder, or none)")
    use.add_argument("ref")
    use.add_argument("--suite", required=True)
    use.add_argument("--by", default="", help="who decided, recorded with the change (see insights approve --by)")
    use.set_defaults(func=cmd_adapters_use)
    rb = ad_sub.add_parser("rollback", help="go back to the suite's previous model")
    rb.add_argument("--suite", required=True)
    rb.add_argument("--by", default="", help="who decided, recorded with the change (see insights approve --by)")
    rb.set_defaults(func=cmd_adapters_rollback)
    imb = ad_sub.add_parser("import", help="register the adapter a trained bundle (train --bundle) produced")
    imb.add_argument("folder")
    imb.set_defaults(func=cmd_adapters_import)
    exm = ad_sub.add_parser("export", help="write the adapter merged into its base model, a folder any "
                                           "OpenAI-compatible server can serve (transformers serve FOLDER)")
    exm.add_argument("ref", help="the adapter's id, its job's id, or its folder")
    exm.add_argument("--out", required=True, help="a new or empty folder for the merged model")
    exm.set_defaults(func=cmd_adapters_export)
    hist = ad_sub.add_parser("history", help="the suite's gate decisions and model changes, newest first")
    hist.add_argument("--suite", required=True)
    hist.add_argument("--json", action="store_true", help="one JSON array")
    hist.set_defaults(func=cmd_adapters_history)

    imp_ = sub.add_parser("improve", help="train, evaluate on heldout, gate and promote a suite's model, in stages")
    methods.add_arguments(imp_, methods.IMPROVE)
    imp_.add_argument("--methods", default="sft", help="sft, optionally dpo and grpo on top of it: e.g. sft,dpo,grpo")
    imp_.add_argument("--preset", default="", help="training preset (default: by hardware)")
    imp_.add_argument("--resume", nargs="?", const="latest", default="",
                      help="continue an improvement from its last finished stage (its id; default the suite's latest)")
    imp_.add_argument("--json", action="store_true", help="print one JSON object: promoted, before (the serving configuration), "
                      "after (the candidate with the serving memory), p_value, comparison, power")
    imp_.set_defaults(func=cmd_improve)

    exp = sub.add_parser("export", help="write a training file (SFT, DPO, GRPO, OpenAI JSONL) from a suite's train split")
    exp.add_argument("kind", choices=EXPORT_KINDS)
    exp.add_argument("--suite", required=True, help="suite name")
    exp.add_argument("--out", default="", help="output file (default: a new file in the exports folder)")
    exp.add_argument("--pairs-from", default="preferences",
                     help="DPO pair sources, comma separated: preferences,ratings,verifier")
    exp.add_argument("--force", action="store_true", help="replace an earlier .jsonl export at --out")
    exp.add_argument("--source", default="",
                     help="only trajectories from these sources, comma separated (agent, traces, collect, proxy, ...)")
    exp.set_defaults(func=cmd_export)

    lab = sub.add_parser("labels", help="people's labels, preferences and corrections").add_subparsers(
        dest="action", required=True)
    lex = lab.add_parser("export", help="write them with each run and task beside them (JSONL, CSV or a "
                                        "Hugging Face datasets folder)")
    lex.add_argument("--format", dest="fmt", choices=["jsonl", "csv", "hf"], default="jsonl")
    lex.add_argument("--out", default="", help="file (jsonl, csv) or folder (hf); default: label-exports/ in the "
                                               "workspace")
    lex.add_argument("--suite", default="", help="only this suite")
    lex.add_argument("--kinds", default="labels,preferences,corrections",
                     help="comma separated, of labels, preferences, corrections (default all three)")
    lex.add_argument("--force", action="store_true",
                     help="replace an earlier export at --out (a .jsonl/.csv file, or a folder with .agentlearn-export)")
    lex.set_defaults(func=cmd_labels_export)

    train = sub.add_parser("train", help="train a LoRA adapter (runs the job process and waits for it)")
    train.add_argument("method", nargs="?", choices=TRAINING_METHODS)
    train.add_argument("--run-job", default="", metavar="JOB_ID",
                       help="train a stored job in this process (what a launched job's process runs)")
    train.add_argument("--config", default="", help="a job YAML config (then --suite/--preset are not used)")
    train.add_argument("--suite", default="", help="export this suite's train split and train on it")
    train.add_argument("--preset", default="", help="cpu-tiny, cpu-small or cuda-qlora (default: by hardware)")
    train.add_argument("--max-steps", type=int, default=None, help="override the preset's number of steps")
    train.add_argument("--pairs-from", default="preferences", help="DPO pair sources (see export)")
    train.add_argument("--init-adapter", default="", help="start from this adapter (id, its job's id, or a folder)")
    train.add_argument("--json", action="store_true", help="print one JSON object with the result")
    train.add_argument("--bundle", default="", metavar="DIR",
                       help="write a self-contained job folder (data, job.yaml, run.sh for accelerate launch) to "
                            "train elsewhere, instead of training here; bring it back with `adapters import DIR`")
    train.set_defaults(func=cmd_train)

    users = sub.add_parser("users", help="dashboard accounts and roles (annotator < reviewer < admin)")
    users_sub = users.add_subparsers(dest="action", required=True)
    add = users_sub.add_parser("add", help="create an account (asks for the password)")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=["annotator", "reviewer", "admin"])
    add.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    add.set_defaults(func=cmd_users_add)
    users_sub.add_parser("list", help="list accounts and their roles").set_defaults(func=cmd_users_list)
    rm = users_sub.add_parser("remove", help="delete an account (their labels stay)")
    rm.add_argument("name")
    rm.set_defaults(func=cmd_users_remove)
    role = users_sub.add_parser("set-role", help="change an account's role")
    role.add_argument("name")
    role.add_argument("role", choices=["annotator", "reviewer", "admin"])
    role.set_defaults(func=cmd_users_set_role)
    pw = users_sub.add_parser("set-password", help="replace an account's password (asks for it)")
    pw.add_argument("name")
    pw.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    pw.set_defaults(func=cmd_users_set_password)
    tok = users_sub.add_parser("token", help="print a new ingest token for `collect` and `proxy` (the store keeps its hash)")
    tok.add_argument("name")
    tok.add_argument("--revoke", action="store_true", help="delete the account's ingest tokens instead")
    tok.set_defaults(func=cmd_users_token)
    check = users_sub.add_parser("check-address", help="exit 1 if the dashboard may not serve this address")
    check.add_argument("address")
    check.set_defaults(func=cmd_users_check_address)

    px = sub.add_parser("proxy", help="an OpenAI-compatible endpoint that adds the suite's playbook and exemplars "
                                      "to each request, forwards it upstream and records the exchange")
    px.add_argument("--upstream", required=True, help="the OpenAI-compatible base URL to forward to, e.g. "
                                                      "http://127.0.0.1:8000/v1 or https://api.openai.com/v1")
    px.add_argument("--port", type=int, default=8788)
    px.add_argument("--host", default="127.0.0.1", help="off loopback only with accounts (senders present a token)")
    px.add_argument("--suite", default="", help="the suite for requests that name none (header X-Agentlearn-Suite "
                                                "or metadata.suite)")
    px.add_argument("--budget", type=int, default=1000, help="tokens the playbook and exemplars may add (default 1000)")
    px.set_defaults(func=cmd_proxy)

    co = sub.add_parser("collect", help="an OTLP/HTTP receiver (POST /v1/traces, protobuf or JSON) that stores "
                                        "another agent's spans and turns each trace into an episode")
    co.add_argument("--port", type=int, default=4318)
    co.add_argument("--host", default="127.0.0.1", help="off loopback only with accounts (senders present a token)")
    co.add_argument("--suite", default="", help="the suite of the episodes (default: the service's name in the spans)")
    co.add_argument("--quiet", type=float, default=30.0,
                    help="seconds without new spans after which a trace whose root span never came is assembled")
    co.set_defaults(func=cmd_collect)

    ret = sub.add_parser("retrieval", help="how exemplars are retrieved per suite (the auto mode's choice)")
    ret_sub = ret.add_subparsers(dest="action", required=True)
    choose = ret_sub.add_parser("choose", help="choose mode, k and tool-awareness by leave-one-out on the train split")
    choose.add_argument("--suite", required=True)
    choose.add_argument("--finalists", type=int, default=None,
                        help="configurations run through the agent after the model-free stage (default 3; 0: model-free only)")
    choose.add_argument("--json", action="store_true", help="print the stored choice as one JSON object")
    choose.set_defaults(func=cmd_retrieval_choose)
    show = ret_sub.add_parser("show", help="the suite's stored choice and the figures behind it")
    show.add_argument("--suite", required=True)
    show.add_argument("--json", action="store_true", help="print the stored choice as one JSON object")
    show.set_defaults(func=cmd_retrieval_show)

    db = sub.add_parser("db", help="move the store between TinyDB folders and PostgreSQL").add_subparsers(
        dest="action", required=True)
    cp = db.add_parser("copy", help="copy the whole store and its vectors, then check the counts")
    cp.add_argument("--to", required=True, help="a postgresql:// URL, or a workspace folder (its store/ and vectors/)")
    cp.add_argument("--from", dest="source", default="",
                    help="copy from this URL or folder (a backup, say) instead of this workspace's store")
    cp.add_argument("--force", action="store_true", help="replace what the target holds")
    cp.set_defaults(func=cmd_db_copy)

    bk = sub.add_parser("backup", help="write a consistent copy of the store and its vectors (safe while serving); "
                                       "restore with `db copy --from DIR --to TARGET --force`")
    bk.add_argument("--out", default="", help="a new folder (default: backups/<UTC time> in AGENTLEARN_HOME)")
    bk.set_defaults(func=cmd_backup)

    return p


def _who(args: argparse.Namespace | None = None):
    """Who this command acts for (agentlearn.policy.command_line_identity); the library checks the role.

    Without accounts: the local user, or the --by name. With accounts: AGENTLEARN_USER signed in with
    AGENTLEARN_PASSWORD (or the person who started this child from the dashboard); --by must name them.
    """
    import os

    from agentlearn import policy

    return policy.command_line_identity(open_workspace().repo, os.environ, getattr(args, "by", "") or "")


def _read_password(args: argparse.Namespace) -> str:
    """The password from stdin's first line (--password-stdin) or typed twice at a prompt (never an argument)."""
    import getpass

    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass(f"password for {args.name}: ")
    if getpass.getpass("again: ") != first:
        raise ValueError("the two passwords differ; nothing was changed")
    return first


def cmd_users_add(args: argparse.Namespace) -> int:
    from agentlearn import users

    account = users.add_user(open_workspace().repo, args.name, args.role, _read_password(args), who=_who())
    print(f"added {account.name} ({account.role})")
    return 0


def cmd_users_list(args: argparse.Namespace) -> int:
    from agentlearn import accounts

    users = accounts.list_users(open_workspace().repo)
    for account in users:
        print(f"{account.name}\t{account.role}\tsince {account.created:%Y-%m-%d}")
    if not users:
        print("no accounts: the dashboard runs as one local user on 127.0.0.1", file=sys.stderr)
    return 0


def cmd_users_remove(args: argparse.Namespace) -> int:
    from agentlearn import users

    account = users.remove_user(open_workspace().repo, args.name, who=_who())
    print(f"removed {account.name}; their labels, preferences and reviews stay under that name")
    return 0


def cmd_users_set_role(args: argparse.Namespace) -> int:
    from agentlearn import users

    account = users.set_role(open_workspace().repo, args.name, args.role, who=_who())
    print(f"{account.name} is now {account.role}")
    return 0


def cmd_users_set_password(args: argparse.Namespace) -> int:
    from agentlearn import users

    account = users.set_password(open_workspace().repo, args.name, _read_password(args), who=_who())
    print(f"new password set for {account.name}")
    return 0


def cmd_users_token(args: argparse.Namespace) -> int:
    from agentlearn.traces import access

    repo = open_workspace().repo
    if args.revoke:
        print(f"revoked {access.revoke_tokens(repo, args.name, who=_who())} ingest token(s) of {args.name}")
        return 0
    print(access.issue_token(repo, args.name, who=_who()))
    return 0


def cmd_proxy(args: argparse.Namespace) -> int:
    from agentlearn.traces import proxy

    print(f"proxy on http://{args.host}:{args.port}/v1 -> {args.upstream}", file=sys.stderr)
    proxy.serve(open_workspace(), args.upstream, host=args.host, port=args.port, suite=args.suite,
                budget_tokens=args.budget)
    return 0


def cmd_collect(args: argparse.Namespace) -> int:
    from agentlearn.traces import collect

    print(f"collecting on http://{args.host}:{args.port}/v1/traces", file=sys.stderr)
    collect.serve(open_workspace(), host=args.host, port=args.port, suite=args.suite, quiet_s=args.quiet)
    return 0


def cmd_users_check_address(args: argparse.Namespace) -> int:
    from agentlearn import accounts

    problem = accounts.serving_problem(args.address, open_workspace().repo)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 1
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from agentlearn.demo import ensure_demo_workspace

    ws = open_workspace()
    summary = ensure_demo_workspace(ws, **({"runs": args.runs} if args.runs is not None else {}))
    _print_json(summary)
    return 0


class _TaskProgress:
    """Progress of a run or an evaluation: a line on stderr per task for people, and the dashboard's
    record (processes.report), which moves as each task is answered, inside a batch too.

    `parts` evaluations of the same tasks one after another (--ablate runs two) count as one bar.
    """

    def __init__(self, parts: int = 1) -> None:
        self.parts, self.part, self.done = parts, 0, 0

    def __call__(self, i: int, n: int, trials: list, seconds: float) -> None:
        """After each task is stored."""
        last = trials[-1]
        mark = "ok " if last.verdict and last.verdict.success else "FAIL"
        print(f"[{i}/{n}] {mark} {last.task_id} trials={len(trials)} ({seconds:.0f}s)", file=sys.stderr, flush=True)
        self._report(i, n, f"{mark.strip()} {last.task_id}")
        if i == n:
            self.part += 1

    def answered(self, a: int, n: int, message: str = "") -> None:
        """As each task gets its answer (before its batch ends and is stored), and before each generation
        (`message`: how many tasks are answering, at which step), so the bar has a total from the start."""
        self._report(a, n, message or f"{a} of {n} answered")

    def _report(self, done: int, n: int, message: str) -> None:
        from agentlearn import processes

        done = self.part * n + done
        if done < self.done:
            return  # a batch's tasks are stored after all of them were answered: the count never goes back
        self.done = done
        processes.report(None, done, self.parts * n, message)


def _progress_line(i: int, n: int, message: str) -> None:
    """Progress of a multi-step command (curve, retrieval choice): stderr and the dashboard's record."""
    from agentlearn import processes

    print(f"[{i}/{n}] {message}", file=sys.stderr, flush=True)
    processes.report(None, i, n, message)


def cmd_tasks_import(args: argparse.Namespace) -> int:
    from agentlearn.tasks import import_suite, load_tasks

    ws = open_workspace()
    suite = import_suite(ws, args.file, args.suite, heldout=args.heldout, card=args.card,
                         instruction=args.instruction, description=args.description, fmt=args.fmt,
                         answers=args.answers, who=_who())
    tasks = load_tasks(ws, suite.name)
    train = sum(1 for t in tasks if t.split == "train")
    print(f"imported {len(tasks)} tasks into suite {suite.name!r}: {train} train, {len(tasks) - train} heldout, "
          f"{len(suite.tools)} tools; instruction: {'own' if suite.instruction else 'the default'}; "
          f"at most {suite.max_calls} call{'s' if suite.max_calls > 1 else ''} an answer, {suite.max_steps} "
          f"step{'s' if suite.max_steps > 1 else ''} a turn"
          f"{'; a request may be answered without a call' if suite.may_decline else ''}")
    return 0


def cmd_tasks_list(args: argparse.Namespace) -> int:
    from agentlearn.tasks import load_tasks, suites

    ws = open_workspace()
    for suite in suites(ws):
        tasks = load_tasks(ws, suite.name)
        train = sum(1 for t in tasks if t.split == "train")
        print(f"{suite.name}\t{len(tasks)} tasks ({train} train, {len(tasks) - train} heldout)\t{len(suite.tools)} tools"
              f"\t{suite.description}")
    return 0


def cmd_suite_show(args: argparse.Namespace) -> int:
    from agentlearn import arg_kinds
    from agentlearn.prompts import instruction_for, tool_signature
    from agentlearn.tasks import card_of, get_suite

    suite = get_suite(open_workspace(), args.name)
    if args.json:
        _print_json(card_of(suite))
        return 0
    print(f"suite: {suite.name}\ndescription: {suite.description or '-'}")
    print("instruction" + ("" if suite.instruction else " (the default)") + f":\n  {instruction_for(suite)}")
    print("tools:")
    for tool in suite.tools:
        print(f"  {tool_signature(tool)}")
    print("argument kinds (tool.argument, kind in use, [inferred]):")
    for row in arg_kinds.table(suite):
        mark = "  (set by a person)" if row["set_by"] == "person" else ""
        print(f"  {row['tool']}.{row['argument']}\t{row['kind'] or '(from the value)'}"
              f"\t[{row['inferred'] or 'from the value'}]{mark}")
    return 0


def cmd_suite_edit(args: argparse.Namespace) -> int:
    from agentlearn.tasks import parse_kind_override, update_suite

    overrides: dict[str, dict[str, str]] = {}
    for text in args.kind:
        tool, arg, kind = parse_kind_override(text)
        overrides.setdefault(tool, {})[arg] = kind
    if args.instruction is None and args.description is None and not overrides:
        raise ValueError("nothing to change: give --instruction, --description or --kind")
    suite = update_suite(open_workspace(), args.name, instruction=args.instruction, description=args.description,
                         kind_overrides=overrides, who=_who())
    people = sum(len(a) for a in suite.arg_kind_overrides.values())
    print(f"suite {suite.name!r} saved; instruction: {'own' if suite.instruction else 'the default'}; "
          f"{people} argument kind(s) set by a person")
    return 0


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


def _print_bindings(suite) -> None:
    for b in suite.bindings or []:
        print(f"  {b.kind} {b.target}\ttools: {', '.join(b.tools) or 'all'}\ttimeout {b.timeout_s:g} s")
    if not suite.bindings:
        print("  no tool runs: calls are graded, not executed")


def cmd_suites_bind(args: argparse.Namespace) -> int:
    from agentlearn import tools
    from storage.records import ToolBinding

    kind = "python" if args.python else "environment" if args.environment else "mcp"
    binding = ToolBinding(kind=kind, target=args.python or args.environment or args.mcp, tools=_names(args.tools),
                          timeout_s=args.timeout)
    suite = tools.bind(open_workspace(), args.suite, binding, who=_who())
    print(f"suite {suite.name!r}: tools bound")
    _print_bindings(suite)
    return 0


def cmd_suites_unbind(args: argparse.Namespace) -> int:
    from agentlearn import tools

    suite = tools.unbind(open_workspace(), args.suite, _names(args.tools) or None, who=_who())
    print(f"suite {suite.name!r}: tools unbound")
    _print_bindings(suite)
    return 0


def episode_json(trajectory) -> dict:
    """One run as `run --json` prints it: each step's calls with what they answered, its answer, the verdict."""
    steps = []
    for n, step in enumerate(trajectory.steps):
        calls = step.calls or ([trajectory.tool_call] if trajectory.tool_call and n == 0 else [])
        results = [*step.results, *[None] * (len(calls) - len(step.results))]
        steps.append({"step": n, "turn": step.turn, "user": step.user, "answer": step.answer,
                      "observation": step.observation, "seconds": step.seconds,
                      "calls": [{"name": c.name, "arguments": c.arguments,
                                 "observation": r.content if r else step.observation,
                                 "error": r.error if r else step.observation.startswith("Error"),
                                 "seconds": r.seconds if r else None} for c, r in zip(calls, results, strict=True)]})
    verdict = trajectory.verdict
    return {"task_id": trajectory.task_id, "trajectory_id": trajectory.id, "trial": trajectory.trial, "steps": steps,
            "verdict": verdict.model_dump(include={"success", "reward", "reason"}) if verdict else None}


def cmd_run(args: argparse.Namespace) -> int:
    from agentlearn.agent import run_tasks
    from agentlearn.tasks import load_tasks

    ws = open_workspace()
    from agentlearn import processes
    from agentlearn.memory.retrieval import resolve_options

    options = methods.from_args(args)
    tasks = load_tasks(ws, args.suite, args.split)[: options.limit or None]
    if not tasks:
        raise ValueError(f"suite {args.suite!r} has no {args.split} tasks")
    used = resolve_options(ws, args.suite, options)
    print(f"running {used.label()} on {len(tasks)} {args.split} tasks", file=sys.stderr, flush=True)
    progress = _TaskProgress()
    runs = run_tasks(ws, tasks, used, progress=progress, answered=progress.answered)
    solved = sum(1 for r in runs if r[-1].verdict and r[-1].verdict.success)
    stored = sum(len(r) for r in runs)
    processes.finish(ws, result={"options": used.to_dict(), "label": used.label(), "stored": stored,
                                 "solved": solved, "tasks": len(runs)})
    if args.json:
        for trials in runs:
            _print_json(episode_json(trials[-1]))
    print(f"stored {stored} trajectories; solved {solved}/{len(runs)} tasks", file=sys.stderr if args.json else sys.stdout)
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from agentlearn.feedback import replays

    replayed = replays.run(open_workspace(), args.correction, who=_who(args))
    print(f"stored replay {replayed.id} with {len(replayed.steps)} steps")
    return 0


def cmd_insights_propose(args: argparse.Namespace) -> int:
    from agentlearn import processes
    from agentlearn.memory import proposals
    from agentlearn.tasks import get_suite

    ws = open_workspace()
    get_suite(ws, args.suite)
    sources = [s.strip() for s in args.sources.split(",") if s.strip()] or None
    made = proposals.propose(ws, args.suite, sources,
                             on_progress=lambda done, total, what: processes.report(ws, done, total, what))
    processes.finish(ws, result={"proposals": len(made.proposals), "summary": made.summary(), **{
        f"from_{src}": n for src, n in made.counts.items()}, **{f"why_{src}": why for src, why in made.reasons.items()}})
    if args.json:
        print(json.dumps([p.model_dump(mode="json") for p in made.proposals], ensure_ascii=False, indent=1))
        return 0
    for p in made.proposals:
        print(f"{p.source:8} {p.operation:6} {p.text}   [{p.rationale}]")
    print(made.summary())
    return 0


def cmd_insights_list(args: argparse.Namespace) -> int:
    from agentlearn.memory import playbook
    from agentlearn.tasks import get_suite
    from storage.records import Insight, InsightProposal

    ws = open_workspace()
    get_suite(ws, args.suite)
    if args.status in ("active", "removed"):
        rows = sorted(ws.repo.find(Insight, suite=args.suite, status=args.status), key=playbook.rank_key)
    else:
        rows = ws.repo.find(InsightProposal, suite=args.suite, status=args.status)
    if args.json:
        print(json.dumps([r.model_dump(mode="json") for r in rows], ensure_ascii=False, indent=1))
        return 0
    for r in rows:
        if isinstance(r, Insight):
            print(f"+{r.helpful} -{r.harmful} ~{r.neutral}  imp {r.importance}  [{r.section}] {r.text}")
        else:
            print(f"{r.source:8} {r.operation:6} {r.text}   [{r.rationale}]")
    if not rows:
        print(f"no {args.status} {'bullets' if args.status in ('active', 'removed') else 'proposals'} in "
              f"suite {args.suite!r}" + ("" if args.status != "pending" else
                                         f"; run: python -m agentlearn insights propose --suite {args.suite}"))
    return 0


def cmd_insights_approve(args: argparse.Namespace) -> int:
    from agentlearn.memory import insights
    from agentlearn.tasks import get_suite

    ws = open_workspace()
    get_suite(ws, args.suite)
    who = _who(args)
    approved = left = 0
    for p in insights.pending(ws, args.suite):
        try:
            insights.approve(ws, p.id, who)
            approved += 1
        except ValueError as e:  # e.g. an earlier proposal removed its target: leave it for a person
            left += 1
            print(f"left pending: {e}", file=sys.stderr)
    print(f"{approved} proposals approved" + (f", {left} left pending" if left else ""))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from agentlearn.evaluate import evaluate, evaluate_repeats, summary

    ws = open_workspace()
    options = methods.from_args(args)
    progress = _TaskProgress(parts=2 if options.ablate else 1)
    # progress goes to stderr (--json output stays one object) and to the dashboard's record
    common = dict(split=args.split, progress=progress, answered=progress.answered)
    baseline = args.baseline
    if options.ablate:
        if args.repeats > 1 or not options.uses_insights:
            raise ValueError("--ablate measures one playbook bullet: use it with a method that shows the playbook "
                             f"({', '.join(USES_INSIGHTS)}) and without --repeats")
        # the whole playbook now, on the same tasks: what the bullet is weighed against
        evaluate(ws, args.suite, options.replace(ablate=()), **common)
        runs = [evaluate(ws, args.suite, options, **common)]
        baseline = options.method
    elif args.repeats > 1:
        runs = evaluate_repeats(ws, args.suite, args.repeats, options, **common)
    else:
        runs = [evaluate(ws, args.suite, options, **common)]
    result = summary(ws, runs, baseline=baseline)
    if args.json:
        _print_json(result)
        return 0
    for line in result["lines"]:
        print(line)
    return 0


def cmd_curve(args: argparse.Namespace) -> int:
    from agentlearn.curve import learning_curve, parse_sizes

    ws = open_workspace()
    curve = learning_curve(ws, args.suite, methods.from_args(args), sizes=parse_sizes(args.sizes), draws=args.draws,
                           progress=lambda i, n, msg: _progress_line(i, n, msg))
    if args.json:
        _print_json({"id": curve.id, "suite": curve.suite, "exemplar_mode": curve.exemplar_mode, "k": curve.k,
                     "points": curve.points, "seconds": round(curve.seconds, 1)})
        return 0
    for p in curve.points:
        print(f"bank {p['bank_size']:4d}  draw {p['draw']}  name {p['name_accuracy']:.1%}  "
              f"call {p['call_accuracy']:.1%}  (n={p['n']})")
    return 0


def cmd_adapters(args: argparse.Namespace) -> int:
    from storage.records import Adapter, Suite

    ws = open_workspace()
    serving = {}
    for suite in ws.repo.all(Suite):
        if suite.adapter:
            serving.setdefault(suite.adapter, []).append(suite.name)
    for a in ws.repo.all(Adapter):
        used = f"\tmodel of {', '.join(serving[a.id])}" if a.id in serving else ""
        print(f"{a.id}\t{a.method}\t{a.name}\t{a.path}{used}")
    return 0


def cmd_adapters_use(args: argparse.Namespace) -> int:
    from agentlearn.training import gate

    change = gate.use(open_workspace(), args.suite, args.ref, _who(args))
    print(f"suite {args.suite!r} now runs on {change.adapter_id or 'the base model'} "
          f"(was {change.previous or 'the base model'})")
    return 0


def cmd_adapters_rollback(args: argparse.Namespace) -> int:
    from agentlearn.training import gate

    change = gate.rollback(open_workspace(), args.suite, _who(args))
    print(f"suite {args.suite!r} rolled back to {change.adapter_id or 'the base model'} "
          f"(from {change.previous or 'the base model'})")
    return 0


def cmd_adapters_import(args: argparse.Namespace) -> int:
    from agentlearn.training import bundle

    adapter = bundle.import_bundle(open_workspace(), args.folder, who=_who())
    _print_json({"adapter_id": adapter.id, "job_id": adapter.job_id, "name": adapter.name, "path": adapter.path})
    return 0


def cmd_adapters_export(args: argparse.Namespace) -> int:
    from agentlearn import adapters

    folder = adapters.export_merged(open_workspace(), args.ref, args.out)
    _print_json({"folder": str(folder), "serve": f"transformers serve {folder}"})
    return 0


def cmd_adapters_history(args: argparse.Namespace) -> int:
    from agentlearn.training import gate

    found = gate.history(open_workspace(), args.suite)
    if args.json:
        print(json.dumps([p.model_dump(mode="json") for p in found]))
        return 0
    for p in found:
        figures = f" {p.metric} {p.before:.1%} -> {p.after:.1%}, p={p.p_value:.3g}, n={p.n}" if p.n else ""
        print(f"{p.created:%Y-%m-%d %H:%M}  {p.decision:8} {p.adapter_id or 'base model'}{figures}")
    return 0


def cmd_improve(args: argparse.Namespace) -> int:
    from agentlearn import processes
    from agentlearn.training import improve

    ws = open_workspace()
    trained = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    said = {"text": "", "at": 0.0}

    def say(message: str) -> None:  # progress to stderr (so --json stays one object), at most every 5 s
        if message != said["text"] and time.monotonic() - said["at"] >= 5:
            said.update(text=message, at=time.monotonic())
            print(f"[improve] {message}", file=sys.stderr)

    record = improve.run(ws, args.suite, methods=trained, resume=args.resume, preset=args.preset,
                         limit=methods.from_args(args).limit,
                         on_stage=lambda stage: print(f"[improve] {stage.name}: {stage.status}"
                                                      + (f" ({stage.error})" if stage.error else ""), file=sys.stderr),
                         on_message=say, who=_who())
    result = improve.summary(record)
    processes.finish(ws, result=result, error="" if record.status in ("succeeded", "stopped") else record.error)
    if args.json:
        _print_json(result)
    else:
        for line in result["lines"]:
            print(line)
    return 0 if record.status in ("succeeded", "stopped") else 1


def cmd_export(args: argparse.Namespace) -> int:
    from agentlearn.datasets import export

    pairs = tuple(p.strip() for p in args.pairs_from.split(",") if p.strip())
    sources = tuple(x.strip() for x in args.source.split(",") if x.strip())
    record = export(open_workspace(), args.kind, args.suite, out_path=args.out or None, pairs_from=pairs,
                    force=args.force, sources=sources)
    _print_json({"id": record.id, "kind": record.kind, "suite": record.suite, "path": record.path,
                 "rows": record.rows, "trajectories": len(record.trajectory_ids), "labels": len(record.label_ids),
                 "preferences": len(record.preference_ids), "exemplars": len(record.exemplar_ids)})
    return 0


def cmd_labels_export(args: argparse.Namespace) -> int:
    from agentlearn.feedback import export

    kinds = tuple(k.strip() for k in args.kinds.split(",") if k.strip())
    path, n = export.write(open_workspace(), args.fmt, args.out or None, kinds=kinds, suite=args.suite,
                           force=args.force, who=_who())
    _print_json({"format": args.fmt, "path": str(path), "rows": n})
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from agentlearn import processes
    from agentlearn.training import config as job_config
    from agentlearn.training import jobs
    from storage.records import Adapter

    if args.run_job:
        return _run_job(args.run_job)
    if not args.method:
        raise ValueError(f"give the method to train: {', '.join(TRAINING_METHODS)}")
    ws = open_workspace()
    overrides: dict = {}
    if args.max_steps is not None:
        overrides["max_steps"] = args.max_steps
    if args.init_adapter:
        from pathlib import Path

        from agentlearn import adapters

        # A registered adapter by any of its names, or a folder of adapter files from elsewhere.
        unregistered = Path(args.init_adapter).is_dir() and not any(
            Path(a.path).resolve() == Path(args.init_adapter).resolve() for a in ws.repo.all(Adapter))
        overrides["init_adapter"] = args.init_adapter if unregistered else adapters.find(ws, args.init_adapter).path
    if args.config:
        config = job_config.load(args.config)
        if config.method != args.method:
            raise ValueError(f"{args.config} is a {config.method} config, not {args.method}")
        config = job_config.from_dict({**config.to_dict(), **overrides})
    elif args.suite:
        pairs = tuple(p.strip() for p in args.pairs_from.split(",") if p.strip())
        config = jobs.config_for_suite(ws, args.method, args.suite, args.preset, pairs_from=pairs, **overrides)
    else:
        raise ValueError("give --config FILE or --suite NAME")
    if args.bundle:
        from agentlearn.training import bundle

        folder = bundle.write(ws, config, args.bundle)
        _print_json({"bundle": str(folder), "method": config.method, "max_steps": config.max_steps,
                     "launch": str(folder / "run.sh"), "then": f"python -m agentlearn adapters import {folder}"})
        return 0
    job = jobs.launch(ws, config, who=_who())
    started = jobs.process(ws, job)
    print(f"job {job.id} started (process {started.id}, pid {started.pid}); log: {started.log_path}", file=sys.stderr)
    seen = [-1]

    def report(p) -> None:
        if p.done != seen[0] and p.total:
            seen[0] = p.done
            print(f"  {processes.counted(p, 'steps')}" + (f" · {p.message}" if p.message else ""), file=sys.stderr)

    job = jobs.wait(ws, job.id, poll=2.0, on_progress=report)
    adapter = ws.repo.get(Adapter, job.adapter_id) if job.adapter_id else None
    result = {"job_id": job.id, "status": job.status, "adapter_id": job.adapter_id,
              "adapter": adapter.path if adapter else "", "metrics": job.metrics, "error": job.error,
              "export_id": config.export_id, "dataset": config.dataset_path, "log": started.log_path,
              "seconds": round(jobs.elapsed_s(job), 1)}
    if args.json:
        _print_json(result)
    else:
        print(f"{job.status}: adapter {result['adapter'] or '-'}" + (f"; error: {job.error}" if job.error else ""))
    return 0 if job.status in ("succeeded", "stopped") else 1


def _run_job(job_id: str) -> int:
    """The job process (`train --run-job ID`, started by jobs.launch): train the stored job here; its
    Process record gets the steps, and its end from main()."""
    import logging
    import traceback

    from agentlearn import processes
    from agentlearn.training import config as job_config
    from agentlearn.training import jobs, quiet
    from storage.records import Job

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    quiet.install()
    ws = open_workspace()
    job = ws.repo.get(Job, job_id)
    if job is None:
        raise ValueError(f"no job with id {job_id!r} in {ws.settings.store_dir}")
    config = job_config.load(job.config_path)
    print(f"job {job_id}: {config.method} on {config.dataset_path}", flush=True)
    try:
        job = jobs.run_job(ws, job_id, config)
    except Exception:
        traceback.print_exc()  # the log shows where; the Process record gets the one-line reason
        raise
    processes.finish(ws, result={"job_id": job_id, "adapter_id": job.adapter_id})
    print(f"job {job_id}: trained {job.step} steps" + (f", adapter {job.adapter_id}" if job.adapter_id else ""),
          flush=True)
    return 0


def cmd_retrieval_choose(args: argparse.Namespace) -> int:
    from agentlearn.memory import retrieval

    finalists = retrieval.FINALISTS if args.finalists is None else args.finalists
    from agentlearn import agent

    choice = retrieval.choose(open_workspace(), args.suite, progress=_progress_line, how_many=finalists,
                              runner=agent.run_with_agent)
    if args.json:
        _print_json(choice)
    else:
        print(retrieval.summary(choice))
    return 0


def cmd_retrieval_show(args: argparse.Namespace) -> int:
    from agentlearn.memory import retrieval
    from agentlearn.tasks import get_suite

    ws = open_workspace()
    get_suite(ws, args.suite)
    choice = retrieval.current(ws, args.suite)
    if args.json:
        _print_json(choice)
        return 0
    print(retrieval.summary(choice))
    for row in choice.get("stage_b", []):
        print(f"  agent  {retrieval.Config(row['mode'], row['k'], row['tool_aware']).label():28} "
              f"name {row['name_accuracy']:6.1%}  call {row['call_accuracy']:6.1%}  args {row['args_score']:.2f}  "
              f"n={row['n']}")
    for row in sorted(choice.get("stage_a", []), key=lambda r: -r["score"])[:10]:
        print(f"  shots  {retrieval.Config(row['mode'], row['k'], row['tool_aware']).label():28} "
              f"score {row['score']:.3f}  recall {row['recall']:.3f}  top1 {row['top1']:.3f}  share {row['share']:.3f}")
    for ranker, top1 in (choice.get("ranker_top1") or {}).items():
        recalls = "  ".join(f"{r['tools']}: {r['recall']:.2f}" for r in choice.get("stage_t", [])
                            if r.get("ranker") == ranker)
        print(f"  tools  {ranker + ' ranker':28} top1 {top1:.3f}  recall by list size  {recalls}")
    return 0


def _store_location(spec: str) -> Location:
    """This workspace's store for "", else a postgresql:// URL or a workspace folder."""
    settings = Settings.from_env()
    if not spec:
        label = redact(settings.database_url) if settings.database_url else str(settings.store_dir)
    elif is_database_url(spec):
        settings, label = settings.with_(database_url=spec), redact(spec)
    else:
        settings = settings.with_(home=Path(spec).expanduser(), database_url="")
        label = str(settings.store_dir)
    return Location(open_repository(str(settings.store_dir), settings.database_url), settings.vectors_dir, label)


def cmd_db_copy(args: argparse.Namespace) -> int:
    source, target = _store_location(args.source), _store_location(args.to)
    if source.label == target.label:
        raise ValueError(f"--from and --to are both {source.label}")
    start = time.perf_counter()
    try:
        counts = copy_store(source, target, force=args.force)
    except StoreError as e:
        raise RuntimeError(str(e)) from None
    print(f"copied {source.label} -> {target.label} in {time.perf_counter() - start:.1f} s; verified: "
          + (", ".join(f"{n} {table}" for table, n in counts.items()) or "empty store"))
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    out = Path(args.out).expanduser() if args.out else (
        settings.home / "backups" / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"))
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"{out} already exists and is not empty; choose another --out")
    start = time.perf_counter()
    try:
        copy = settings.with_(home=out)
        counts = backup_store(_store_location(""), copy.store_dir, copy.vectors_dir)
    except StoreError as e:
        raise RuntimeError(str(e)) from None
    print(f"backup written to {out} in {time.perf_counter() - start:.1f} s: "
          + (", ".join(f"{n} {table}" for table, n in counts.items()) or "empty store")
          + f". Restore with: python -m agentlearn db copy --from {out} --to TARGET --force")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status. Errors print one clear line, not a traceback.

    Started by the dashboard (processes.start), it also records how it ended on its Process record;
    a crash that gets no further than this still leaves a reason there.
    """
    from agentlearn import processes, redact

    if processes.current_id():  # a child whose output is a log that people read: no secrets in it
        redact.install()
        processes.beat()
    try:
        args = _parser().parse_args(argv)
        code = int(args.func(args) or 0)
    except (ValueError, OSError, RuntimeError, StoreError) as e:  # OSError: disk, policy (PermissionError)
        print(f"error: {e}", file=sys.stderr)
        processes.finish(None, error=str(e))
        return 2
    except SystemExit as e:  # argparse refused the arguments (or --help): it printed why
        processes.finish(None, error="" if e.code in (0, None) else f"bad arguments (exit status {e.code}); see the log")
        raise
    except BaseException as e:
        processes.finish(None, error=f"{type(e).__name__}: {e}")
        raise
    processes.finish(None, error="" if code == 0 else f"the command ended with exit status {code}; see the log")
    return code


if __name__ == "__main__":
    sys.exit(main())
