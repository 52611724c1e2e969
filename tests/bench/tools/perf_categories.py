"""Inclusive CPU share by component from `perf script -F comm,tid,ip,sym` output (first matching rule wins).

Usage: python3 perf_categories.py perf.txt — see docs/performance.md."""
import sys, re, collections
RULES = [
    ("sqlite: fsync/fdatasync", r"fsync|fdatasync|sqlite3OsSync|unixSync"),
    ("sqlite: WAL/page writes (pwrite)", r"unixWrite|pwrite|walWriteToLog|walFrames|sqlite3WalFrames"),
    ("sqlite: statement exec (VDBE/btree)", r"sqlite3VdbeExec|sqlite3_step|sqlite3Btree"),
    ("sqlite: prepare/bind/finalize", r"sqlite3_prepare|sqlite3LockAndPrepare|sqlite3_bind|sqlite3_reset|sqlite3_finalize|SqliteArguments::bind|StatementHandle::prepare"),
    ("sqlx worker: channel/park/other", r"sqlx_sqlite::connection::worker"),
    ("sqlx async side (QueryBuilder, execute, tx)", r"sqlx_core|sqlx_sqlite|QueryBuilder"),
    ("embedded broker (rumqttd)", r"rumqttd"),
    ("hub MQTT client (rumqttc)", r"rumqttc"),
    ("JSON reading parse (protocol)", r"hearth_protocol::json::parse|hearthd::sources::json"),
    ("alert JSON/outbox/upstream", r"hearthd::upstream|AlertMessage|serde_json::ser"),
    ("metrics", r"metrics::|metrics_exporter|metrics_util"),
    ("http (axum/hyper)", r"axum|hyper"),
    ("core loop (gate, rules, batch)", r"hearthd::core|hearthd::gate|hearthd::rules|hearthd::store::encode_obs"),
    ("tokio scheduler/park/timers", r"tokio::runtime"),
]
def main(path):
    per = collections.Counter(); threads = collections.Counter(); total = 0
    comm = None; frames = []
    def flush():
        nonlocal total
        if comm is None: return
        total += 1
        threads[comm] += 1
        text = "\n".join(frames)
        for name, rx in RULES:
            if re.search(rx, text):
                per[name] += 1; return
        leaf = frames[0] if frames else "?"
        per["other: " + ("kernel" if "[k]" in leaf else "unattributed")] += 1
    for line in open(path, errors="replace"):
        if not line.strip():
            continue
        if not line.startswith(("\t", " ")):
            flush(); comm = line.split()[0]; frames = []
        else:
            parts = line.strip().split(None, 1)
            frames.append(parts[1] if len(parts) > 1 else "")
    flush()
    print(f"samples {total}")
    for k, v in threads.most_common(): print(f"  thread {k:28s} {100*v/total:5.1f}%")
    for k, v in per.most_common(): print(f"  {k:45s} {100*v/total:5.1f}%")
main(sys.argv[1])
