/* promql_internal.h: what the files of src/promql share and nobody else sees: tokens, AST
 * nodes, evaluator values and the small helpers (label-key maps, vectors) every stage uses.
 *
 * Ownership: an AST node owns its children, strings and matchers; a value owns its labels
 * and sample arrays. Times are int64_t milliseconds.
 */
#ifndef WARD_PROMQL_INTERNAL_H
#define WARD_PROMQL_INTERNAL_H

#include "promql/promql.h"

/* ---- lexer ---- */
enum tok {
	T_EOF = 0,
	T_ERR,
	T_IDENT, /* metric or label name, keyword-free identifier (may contain ':') */
	T_NUM,
	T_STR,
	T_DUR,
	T_LPAREN,
	T_RPAREN,
	T_LBRACE,
	T_RBRACE,
	T_LBRACK,
	T_RBRACK,
	T_COMMA,
	T_COLON,
	T_AT,
	/* binary operators */
	T_ADD,
	T_SUB,
	T_MUL,
	T_DIV,
	T_MOD,
	T_POW,
	T_ATAN2,
	T_EQLC, /* == */
	T_NEQ,  /* != */
	T_LTE,
	T_LSS,
	T_GTE,
	T_GTR,
	T_AND,
	T_OR,
	T_UNLESS,
	/* label matcher operators not above */
	T_ASSIGN, /* = */
	T_EQL_RE, /* =~ */
	T_NEQ_RE, /* !~ */
	/* keywords */
	T_BY,
	T_WITHOUT,
	T_ON,
	T_IGNORING,
	T_GROUP_LEFT,
	T_GROUP_RIGHT,
	T_BOOL,
	T_OFFSET,
	T_START,
	T_END,
};

struct token {
	enum tok type;
	size_t pos; /* byte offset in the input */
	size_t len;
	double num;         /* T_NUM */
	int64_t dur_ms;     /* T_DUR */
	char *str;          /* T_STR (unquoted, owned by the caller), T_IDENT (copy) */
	const char *errmsg; /* T_ERR */
};

struct lexer {
	const char *s;
	size_t n;
	size_t pos;
	int brace_depth; /* inside {...}: keywords are plain label names */
	int brack_depth; /* inside [...]: numbers followed by a unit are durations */
};

void promql_lex_init(struct lexer *lx, const char *s, size_t n);
/* Next token; T_ERR with errmsg and pos on bad input. t->str is a new string or NULL. */
void promql_lex_next(struct lexer *lx, struct token *t);
const char *promql_tok_name(enum tok t);
bool promql_tok_is_binop(enum tok t);
/* Parses a duration at s (n bytes) like "1h30m"; 0 or -1. */
int promql_parse_dur(const char *s, size_t n, int64_t *ms);

/* ---- AST ---- */
enum node_kind {
	N_NUM,
	N_STR,
	N_VSEL, /* instant vector selector */
	N_MSEL, /* matrix selector: vsel child + range */
	N_SUBQ, /* subquery: child + range + step */
	N_CALL,
	N_AGG,
	N_BIN,
	N_NEG, /* unary minus */
	N_PAREN,
};

enum at_kind { AT_NONE = 0, AT_TS, AT_START, AT_END };

enum card { CARD_ONE_TO_ONE = 0, CARD_MANY_TO_ONE, CARD_ONE_TO_MANY, CARD_MANY_TO_MANY };

struct func_def;

struct promql_expr {
	enum node_kind kind;
	enum promql_type type;
	size_t pos; /* start offset, for messages */
	double num; /* N_NUM */
	char *str;  /* N_STR; N_VSEL metric name (may be NULL) */
	/* N_VSEL */
	struct matcher *ms;
	size_t nms;
	/* N_VSEL, N_SUBQ (and N_MSEL keeps them on its vsel child) */
	int64_t offset_ms;
	enum at_kind at;
	int64_t at_ms;
	/* N_MSEL, N_SUBQ */
	int64_t range_ms;
	int64_t step_ms; /* N_SUBQ; 0: default interval */
	/* N_CALL */
	const struct func_def *fn;
	struct promql_expr **args;
	size_t nargs;
	/* N_AGG */
	int agg; /* enum agg_op */
	char **grouping;
	size_t ngrouping;
	bool without;
	bool has_grouping;
	struct promql_expr *param;
	/* N_AGG, N_MSEL, N_SUBQ, N_NEG, N_PAREN: the child */
	struct promql_expr *expr;
	/* N_BIN */
	enum tok op;
	struct promql_expr *lhs, *rhs;
	bool return_bool;
	enum card card;
	bool matching_on;  /* on(...) given */
	bool has_matching; /* on or ignoring given */
	char **mlabels;    /* on/ignoring labels */
	size_t nmlabels;
	char **include; /* group_left/right labels */
	size_t ninclude;
};

struct promql_expr *promql_node_new(enum node_kind k, size_t pos);
const char *promql_binop_str(enum tok op);

/* ---- functions and aggregations ---- */
struct eval_ctx;
struct value;

enum agg_op {
	AGG_SUM = 0,
	AGG_AVG,
	AGG_MIN,
	AGG_MAX,
	AGG_COUNT,
	AGG_STDDEV,
	AGG_STDVAR,
	AGG_TOPK,
	AGG_BOTTOMK,
	AGG_QUANTILE,
	AGG_COUNT_VALUES,
	AGG_GROUP,
	AGG__N
};
/* -1 when name is no aggregation. */
int promql_agg_lookup(const char *name, size_t n);
const char *promql_agg_name(int agg);
bool promql_agg_has_param(int agg);

typedef int (*func_impl)(struct eval_ctx *ec, const struct promql_expr *call, struct value *args,
                         struct value *out);
/* Windows of one series for a range function (series-wise range evaluation): window k is
 * the samples [lo[k], hi[k]) of the series (stale markers removed, at least one sample),
 * ending at rend[k] (the step's time minus the selector's offset). */
struct fn_windows {
	const size_t *lo, *hi;
	const int64_t *rend;
	size_t n;
};
/* Optional beside impl, for a range function whose only argument is a matrix selector
 * without @ and whose output drops __name__: out[k] and ok[k] (whether there is a point) for
 * each window, the values impl gives for the same samples. */
typedef void (*func_windows)(const struct promql_expr *call, const struct tsdb_series *s,
                             const struct fn_windows *w, double *out, bool *ok);
#define PROMQL_FUNC_MAXARGS 6
struct func_def {
	const char *name;
	enum promql_type args[PROMQL_FUNC_MAXARGS];
	int nargs;    /* required */
	int variadic; /* 0: exactly nargs; >0: up to nargs+variadic; -1: unbounded */
	enum promql_type ret;
	func_impl impl;
	func_windows windows; /* NULL: series-wise evaluation calls impl once per step */
};
const struct func_def *promql_func_lookup(const char *name, size_t n);
/* Expected type of argument i (variadic tails repeat the last declared type). */
enum promql_type promql_func_arg_type(const struct func_def *fn, size_t i);

/* ---- values ---- */
struct sample {
	struct labels ls;
	double v;
	int64_t t; /* for timestamp() */
};
struct vec {
	struct sample *s;
	size_t n, cap;
};
struct value {
	enum promql_type type;
	double scalar;
	char *str;
	struct vec vec;        /* PROMQL_VECTOR */
	struct tsdb_series *m; /* PROMQL_MATRIX */
	size_t nm;
};

/* What one selector node read from storage, reused by later steps of the same query. */
struct sel_cache {
	const struct promql_expr *vs;
	int64_t mint, maxt; /* the window the storage was asked for */
	struct tsdb_series *ss;
	size_t n;
};

struct eval_ctx {
	const struct promql_storage *st;
	struct sel_cache *cache;
	size_t ncache, cache_cap;
	size_t *cache_slot; /* open addressing by selector node: index + 1, 0 = empty */
	size_t ncache_slot; /* a power of two, more than twice ncache; 0 before the first */
	int64_t prefetch_ms; /* how far past a step's window a selector reads ahead */
	struct promql_opts opts;
	int64_t start_ms, end_ms; /* of the whole query (for @ start()/end()) */
	int64_t t;                /* the current evaluation time */
	int64_t deadline_mono_ms; /* 0: none */
	size_t samples_loaded;
	/* A range query's series-wise sub-expression, evaluated for all steps up front: its
	 * points per series (storage order), used when promql_eval reaches pre_node. */
	const struct promql_expr *pre_node;
	struct tsdb_series *pre;
	size_t npre;
	/* with opts.max_samples: samples pre_node's selector holds at each step (index by
	 * step), which that step starts its samples_loaded from; else NULL */
	size_t *pre_loaded;
	int64_t pre_start, pre_step;
	size_t *pre_cursor; /* per pre series: its first point at or after the last step read */
	/* An aggregation whose argument is pre_node, grouped once for all steps (aggregate.c):
	 * the group of each pre series and the groups' labels, plus per-step scratch. */
	const struct promql_expr *pre_agg;
	size_t *pre_agg_of;
	struct labels *pre_agg_ls;
	size_t pre_agg_ng;
	void *pre_agg_scratch;
	enum promql_errtype etype;
	struct ward_err *err;
};

void promql_vec_push(struct vec *v, struct labels *ls_moved, double val);
/* The query's deadline and sample limit: 0, or -1 with the error set. */
int promql_check_limits(struct eval_ctx *ec);
/* The point of pre series i at ec->t (steps only move forward), or false. */
bool promql_pre_point(struct eval_ctx *ec, size_t i, double *v);
/* Frees what aggregate.c cached in ec for pre_agg. */
void promql_pre_agg_free(struct eval_ctx *ec);
void promql_vec_free(struct vec *v);
void promql_value_free(struct value *v);
void promql_series_free_all(struct tsdb_series *s, size_t n);
/* Sets an execution error; returns -1. */
int promql_fail(struct eval_ctx *ec, const char *fmt, ...) WARD_PRINTF(2, 3);
int promql_eval(struct eval_ctx *ec, const struct promql_expr *e, struct value *out);
/* promql_eval, except that a range query's precomputed node (ec->pre_node) gives a vector
 * whose labels are borrowed (*borrowed): read them, and call promql_vec_unborrow before
 * freeing the value. */
int promql_eval_borrow(struct eval_ctx *ec, const struct promql_expr *e, struct value *out,
                       bool *borrowed);
void promql_vec_unborrow(struct vec *v);
/* Range vector for a matrix selector or subquery arg at ec->t. */
int promql_eval_matrix(struct eval_ctx *ec, const struct promql_expr *e, struct value *out);
bool promql_vec_has_dup_labels(const struct vec *v);
void promql_labels_drop_name(struct labels *ls);
void promql_sort_vec(struct vec *v);

/* A key built from chosen labels: "name\xffvalue\xff..." in a struct buf. */
void promql_sig(const struct labels *ls, char **names, size_t nnames, bool on, struct buf *out);

void promql_labels_key(const struct labels *ls, struct buf *out);

/* A tiny string -> index hash map for grouping. */
struct strmap_slot {
	uint64_t hash;
	size_t off; /* key's offset in arena + 1; 0: empty */
	size_t len, val;
};
/* Open addressing over hashed keys; the keys live in one arena (no allocation per key). */
struct strmap {
	struct strmap_slot *slots;
	size_t cap, n;
	char *arena;
	size_t alen, acap;
};
void strmap_free(struct strmap *m);
/* Returns the value for key, or SIZE_MAX when absent. */
size_t strmap_get(const struct strmap *m, const char *key, size_t len);
void strmap_put(struct strmap *m, const char *key, size_t len, size_t val);

int promql_eval_aggregate(struct eval_ctx *ec, const struct promql_expr *e, struct value *out);
int promql_eval_binop(struct eval_ctx *ec, const struct promql_expr *e, struct value *out);
/* The operator semantics binop.c applies to one pair of values, for serieswise.c: the value,
 * and in *keep whether a comparison keeps it (true for arithmetic). */
double promql_binop_apply(enum tok op, double l, double r, bool *keep);
/* One element x of a vector against the scalar s (s on the left when swap), as Prometheus
 * combines them: the result, and in *keep whether the element stays (a filtering
 * comparison keeps x's own value; bool gives 0 or 1 and keeps all). */
double promql_binop_vs_point(const struct promql_expr *e, double x, double s, bool swap,
                             bool *keep);
bool promql_binop_is_comparison(enum tok op);
bool promql_binop_drops_name(enum tok op);
/* The labels of a vector-vector match: those of the "many" side's series (lhs, moved), shaped
 * by the operator, on/ignoring and group_x labels taken from rhs (the "one" side's). */
void promql_binop_result_metric(const struct promql_expr *e, struct labels *lhs,
                                const struct labels *rhs, struct labels *out);

/* ---- series-wise range evaluation (eval.c: selectors and range functions; serieswise.c:
 * operators) ----
 * A range query's sub-expression evaluated for all its steps at once, where that gives what
 * evaluating it step by step would. A vector value is a set of series, each with its points
 * at the step times where it has one (ascending), in the order the step-by-step path's
 * vectors have them; series without points are left out. */
struct rv {
	bool is_scalar; /* a number literal, or operators over them */
	double scalar;
	struct tsdb_series *s; /* else: owned */
	size_t n;
};
struct rsteps {
	int64_t start, end, step;
	size_t nsteps;
	/* with max_samples: per step, the samples the step path's selectors would hold for it
	 * (leaves add theirs); else NULL */
	size_t *loaded;
	bool count_points; /* a bare selector counts one per point, not its lookback window */
};
/* Whether e is of a form promql_rv_eval takes (the data may still make it decline). */
bool promql_rv_shape(const struct promql_expr *e);
/* 1 with *out; 0 when e must be evaluated step by step (nothing changed but ec->t and
 * rs->loaded; out is empty); -1 with the error set. */
int promql_rv_eval(struct eval_ctx *ec, const struct promql_expr *e, const struct rsteps *rs,
                   struct rv *out);
/* The selectors and range functions over them (eval.c), as promql_rv_eval. */
bool promql_rv_leaf_shape(const struct promql_expr *e);
int promql_rv_leaf(struct eval_ctx *ec, const struct promql_expr *e, const struct rsteps *rs,
                   struct rv *out);
void promql_rv_free(struct rv *v);
bool promql_series_has_dup(const struct tsdb_series *r, size_t n);

/* ---- number helpers ---- */
void promql_kahan_inc(double inc, double *sum, double *c);
double promql_quantile(double q, double *v, size_t n); /* sorts v */
double promql_mean(const double *v, size_t n);
double promql_stdvar(const double *v, size_t n);
#define PROMQL_STALE_BITS 0x7ff0000000000002ULL
bool promql_is_stale(double v);
double promql_stale(void);
/* Go's strconv.FormatFloat(v, 'f', -1, 64), with NaN, +Inf, -Inf. */
void promql_fmt_float(struct buf *b, double v);

#endif
