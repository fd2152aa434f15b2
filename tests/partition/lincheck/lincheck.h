/* Linearizability checker for the partition suite: a versioned-register model
 * (set, compare-and-set, get), histories read from JSON lines, checked per
 * variable with Lowe's just-in-time linearization (Wing-Gong search with a
 * memo of (linearized set, state) and backtracking), under a time/memory
 * budget. Also the suite's further checks: acknowledged writes not lost,
 * checkpoint versions monotonic, cluster event logs agree. The model and the
 * file formats are described in docs/partition-testing.md. */
#ifndef MB_LINCHECK_H
#define MB_LINCHECK_H

#include <stddef.h>
#include <stdint.h>

#define LC_VAR_MAX 64
/* Event sequences per raft entry in mabeamd's cluster log (seq = index *
 * LC_SEQ_PER_ENTRY + i; REPL_SEQ_PER_ENTRY in node/replication.h). */
#define LC_SEQ_PER_ENTRY 1024

/* LC_INIT is not an operation: it states a variable's state before the
 * history (default: never written, version 0). */
typedef enum { LC_SET, LC_CAS, LC_GET, LC_INIT } lc_kind;
typedef enum { LC_OK, LC_FAIL, LC_UNKNOWN } lc_outcome;

/* One completed invocation, as read from a history line. */
typedef struct {
    int process;
    lc_kind kind;
    char var[LC_VAR_MAX];
    int64_t value; /* set/cas: value written */
    int has_expected_version;
    uint64_t expected_version; /* cas by version */
    int has_expected_value;
    int expected_null; /* cas by value: expects "never written" */
    int64_t expected_value;
    int result_null; /* get ok / init: value was never written */
    int64_t result;  /* get ok / init: value read */
    int has_version;
    uint64_t version; /* ok set/cas: version produced; ok get: version read */
    int conflict;     /* cas fail: it saw a different state (409 / no error) */
    int64_t invoke_ns;
    int64_t complete_ns; /* INT64_MAX for outcome unknown */
    lc_outcome outcome;
    size_t line; /* 1-based line in the history file, 0 if built in memory */
} lc_op;

/* A history: an array of operations owned by the struct. */
typedef struct {
    lc_op *ops;
    size_t len;
    size_t cap;
} lc_history;

void lc_history_init(lc_history *h);
void lc_history_close(lc_history *h);
/* Append a copy of `op` (not retained). Returns 0, or -1 when out of memory. */
int lc_history_add(lc_history *h, const lc_op *op);

/* Parse one JSON history line of `len` bytes (`text` need not be
 * NUL-terminated; not retained) into `op`. Returns 0, or -1 with a message in
 * `err` (`err_size` bytes) for malformed input. Never crashes on any input. */
int lc_parse_line(const char *text, size_t len, lc_op *op, char *err, size_t err_size);

/* Parse a whole JSON-lines buffer (not retained) and append its operations
 * to `h` (blank lines skipped). Returns 0, or -1 with `err` naming the line. */
int lc_parse_history(const char *text, size_t len, lc_history *h, char *err, size_t err_size);

typedef enum { LC_LINEARIZABLE, LC_VIOLATION, LC_BUDGET } lc_verdict;

/* Limits for one variable's search. */
typedef struct {
    int64_t budget_ms;     /* wall-clock limit per variable; 0 = none */
    size_t max_memo_bytes; /* memo size limit per variable; 0 = none */
    int plain;             /* 1: no reductions (unknown writes kept pending), for tests */
} lc_limits;

/* Result for one variable. `window` holds indices into the history's ops:
 * for a violation, the op whose completion could not be linearized followed
 * by the ops concurrent with it and the tail of the longest linearizable
 * prefix found. Owned by the struct; free with lc_var_result_close. */
typedef struct {
    char var[LC_VAR_MAX];
    lc_verdict verdict;
    size_t ops_checked;
    double elapsed_ms;
    size_t blocked_op; /* violation: index of the op that could not complete */
    size_t *window;
    size_t window_len;
    size_t prefix_len; /* violation: length of the longest linearized prefix */
    /* Budget exhausted, but with unobserved unknown-outcome writes taken as
     * never applied the history is not linearizable: blocked_op, window and
     * prefix_len then describe that violation (a likely one, unless such a
     * write explains it). */
    int violation_without_unknown_writes;
} lc_var_result;

void lc_var_result_close(lc_var_result *r);

/* Check every variable of `h` (not modified). On success returns 0 and sets
 * `*results` (caller frees each with lc_var_result_close, then free()) and
 * `*count`, sorted by variable name. Returns -1 when out of memory. */
int lc_check(const lc_history *h, const lc_limits *limits, lc_var_result **results, size_t *count);

/* Acknowledged writes never lost: every ok set/cas is observed by an ok get,
 * or superseded by another write (not completed before it was invoked) whose
 * value an ok get completing after it observed. Writes the index of each lost
 * write into `lost` (caller frees; NULL when none) and its count into
 * `*lost_len`. Returns 0, or -1 when out of memory. */
int lc_check_lost_writes(const lc_history *h, size_t **lost, size_t *lost_len);

/* Checkpoint versions never go backwards. `text` (not retained) is JSON lines
 * {"node":N,"name":S,"version":V,"t_ns":T}; for each (node, name), versions
 * ordered by t_ns must be non-decreasing. Returns 0 ok, 1 violation (described
 * in `msg`), -1 malformed input (described in `msg`). */
int lc_check_checkpoints(const char *text, size_t len, char *msg, size_t msg_size);

/* Event logs of all nodes agree. `texts[i]` (not retained, `lens[i]` bytes)
 * is node i's dump of GET /v1/events?log=cluster: one or more JSON pages
 * {"events":[{"seq":..,...},...]}, concatenated or one per line. Every seq
 * present on two nodes must hold identical events (apart from "time_ms" and
 * "time", each node's own clock when it wrote the event), each node's seqs
 * must be strictly increasing, and no node may lack a seq another node has
 * unless it lacks every later one too (lagging behind is fine, a hole is
 * not). Exceptions: a node's "state.restore" marker (payload applied_index
 * A) is its own, and the seqs below (A + 1) * LC_SEQ_PER_ENTRY it lacks just
 * before the marker are a gap left by a snapshot install: counted in
 * `*snapshot_gaps` (and described in `msg`), not a divergence. A marker at
 * a seq where another node has an event is a divergence. Returns 0 ok,
 * 1 divergence (in `msg`), -1 malformed input or out of memory (in `msg`). */
int lc_check_event_logs(const char *const *texts, const size_t *lens, size_t n, char *msg,
                        size_t msg_size, size_t *snapshot_gaps);

#endif
