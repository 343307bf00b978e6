"""Segment Q3: enishi's segment_bench against DuckDB on the same exported data, interleaved.

Run by benches/compare/run inside its venv (duckdb installed there). Starts
`segment_bench --serve`, which generates the data set, loads its engine and answers
`raw N` / `cold N` / `state N` / `memory` on its standard input, loads the exported CSV files
into DuckDB, then alternates rounds: the enishi side runs N evaluations and reports its median,
DuckDB runs the same query N times. Both sides must count the same customers. The last line is
`name=value` pairs with the given suffix.

`raw` is enishi's engine evaluating from its order columns, which it keeps clustered by
customer; DuckDB gets the same layout (a second orders table loaded `ORDER BY customer_id`) and
is measured on whichever of its two tables answers raw Q3 faster. `cold` is enishi from the
unsorted generated columns against DuckDB on the exported (unsorted) table.
"""

import argparse
import statistics
import subprocess
import sys
import time

import duckdb

NOW = 1_751_295_600  # 2025-07-01 00:00 Asia/Tokyo, as in examples/segment_bench.rs
DAY = 86_400
CUTOFF = NOW - 30 * DAY

# Q3: linked AND birth_month = 6 AND total spend >= 50,000 AND last order more than 30 days
# before now AND bought product 1 AND never bought product 2.
# The customer filters first, then the orders of those customers only: on DuckDB 2.0.0 this is
# about three times faster than joining the grouped orders to the customers afterwards (the
# obvious formulation), so DuckDB is measured on its better plan.
RAW_Q3 = f"""
SELECT count(*) FROM (
    SELECT customer_id FROM {{orders}}
    WHERE customer_id IN (SELECT customer_id FROM customers WHERE line_linked = 1 AND birth_month = 6)
    GROUP BY customer_id
    HAVING sum(amount) >= 50000 AND max(ordered_at) < {CUTOFF}
       AND bool_or(product_id = 1) AND NOT bool_or(product_id = 2)
)
"""

STATE_BUILD = """
CREATE OR REPLACE TABLE customer_state AS
SELECT c.customer_id, c.birth_month, c.line_linked,
       coalesce(o.total, 0) AS total, o.last_at,
       coalesce(o.b1, false) AS bought_1, coalesce(o.b2, false) AS bought_2
FROM customers c LEFT JOIN (
    SELECT customer_id, sum(amount) AS total, max(ordered_at) AS last_at,
           bool_or(product_id = 1) AS b1, bool_or(product_id = 2) AS b2
    FROM orders GROUP BY customer_id
) o USING (customer_id)
"""

STATE_Q3 = f"""
SELECT count(*) FROM customer_state
WHERE line_linked = 1 AND birth_month = 6 AND total >= 50000 AND last_at < {CUTOFF}
  AND bought_1 AND NOT bought_2
"""


def duck(con, sql, runs):
    con.execute(sql).fetchone()  # warm-up
    times, count = [], None
    for _ in range(runs):
        t = time.perf_counter()
        count = con.execute(sql).fetchone()[0]
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times), count


def ask(proc, command):
    proc.stdin.write(command + "\n")
    proc.stdin.flush()
    line = proc.stdout.readline()
    if not line:
        sys.exit(f"segment_bench stopped answering after {command!r}")
    return dict(kv.split("=", 1) for kv in line.split())


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", required=True)
    p.add_argument("--data", required=True, help="directory with customers.csv and orders.csv")
    p.add_argument("--export", action="store_true", help="let segment_bench write the CSV files first")
    p.add_argument("--customers", type=int, default=1_000_000)
    p.add_argument("--orders", type=int, default=10_000_000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--state-runs", type=int, default=15, help="runs per round of the ~1 ms state query")
    p.add_argument("--suffix", default="")
    a = p.parse_args()

    cmd = [a.bin, "--serve", "--customers", str(a.customers), "--orders", str(a.orders)]
    if a.export:
        cmd += ["--export", a.data]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    while True:
        line = proc.stdout.readline()
        if not line:
            sys.exit("segment_bench exited before it was ready")
        print("enishi: " + line.strip(), file=sys.stderr)
        if line.strip() == "ready":
            break

    con = duckdb.connect()
    con.execute(f"SET threads = {a.threads}")
    t = time.perf_counter()
    con.execute(
        f"""CREATE TABLE customers AS SELECT * FROM read_csv('{a.data}/customers.csv', header = true,
        columns = {{'customer_id': 'INTEGER', 'birth_month': 'TINYINT', 'line_linked': 'TINYINT',
                    'sub_active': 'TINYINT'}})"""
    )
    con.execute(
        f"""CREATE TABLE orders AS SELECT * FROM read_csv('{a.data}/orders.csv', header = true,
        columns = {{'order_id': 'BIGINT', 'customer_id': 'INTEGER', 'ordered_at': 'BIGINT',
                    'amount': 'BIGINT', 'product_id': 'INTEGER'}})"""
    )
    # The same orders clustered by customer, as enishi's engine keeps them.
    con.execute("CREATE TABLE orders_by_customer AS SELECT * FROM orders ORDER BY customer_id, ordered_at")
    print(f"duckdb {duckdb.__version__}: loaded in {time.perf_counter() - t:.1f} s, threads={a.threads}", file=sys.stderr)
    # DuckDB's faster layout for raw Q3 (median of a few runs each).
    layouts = {}
    for table in ["orders", "orders_by_customer"]:
        layouts[table] = duck(con, RAW_Q3.format(orders=table), a.runs)[0]
        print(f"duckdb raw Q3 on {table}: {layouts[table]:.1f} ms", file=sys.stderr)
    best = min(layouts, key=layouts.get)

    def rounds(kind, sql, runs):
        ours, theirs, ratios, counts = [], [], [], set()
        for r in range(a.rounds):
            if r % 2 == 0:
                e = ask(proc, f"{kind} {runs}")
                d, dc = duck(con, sql, runs)
            else:
                d, dc = duck(con, sql, runs)
                e = ask(proc, f"{kind} {runs}")
            em = float(e[f"{kind}_ms"])
            counts.update([int(e["count"]), dc])
            ours.append(em)
            theirs.append(d)
            ratios.append(d / em)
            print(f"{kind} round {r}: enishi {em:.3f} ms, duckdb {d:.3f} ms, ratio {d / em:.2f}", file=sys.stderr)
        if len(counts) != 1:
            sys.exit(f"{kind} Q3: the counts differ: {sorted(counts)}")
        return statistics.median(ours), statistics.median(theirs), statistics.median(ratios), counts.pop()

    raw_e, raw_d, raw_r, count = rounds("raw", RAW_Q3.format(orders=best), a.runs)
    cold_e, cold_d, cold_r, cold_count = rounds("cold", RAW_Q3.format(orders="orders"), a.runs)
    con.execute(STATE_BUILD)
    state_e, state_d, state_r, state_count = rounds("state", STATE_Q3, a.state_runs)
    if state_count != count or cold_count != count:
        sys.exit(f"state Q3 counts {state_count}, cold Q3 {cold_count}, raw Q3 {count}")
    mem = ask(proc, "memory")
    proc.stdin.close()
    proc.wait()
    s = a.suffix
    print(
        f"raw_ratio{s}={raw_r:.2f} raw_enishi_ms{s}={raw_e:.2f} raw_duckdb_ms{s}={raw_d:.2f} "
        f"raw_duckdb_table{s}={best} cold_ratio{s}={cold_r:.2f} cold_enishi_ms{s}={cold_e:.2f} cold_duckdb_ms{s}={cold_d:.2f} "
        f"state_ratio{s}={state_r:.2f} state_enishi_ms{s}={state_e:.3f} state_duckdb_ms{s}={state_d:.3f} "
        f"q3_count{s}={count} bytes_per_customer{s}={mem['bytes_per_customer']} duckdb_threads{s}={a.threads}"
    )


if __name__ == "__main__":
    main()
