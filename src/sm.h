/* sm.h: internal interface between the files of sigmamind.core (hidden by -fvisibility=hidden). */
#ifndef SM_H
#define SM_H

#include <stddef.h>
#include <curl/curl.h>
#include "lua.h"
#include "lauxlib.h"
#include "compat.h"   /* Lua 5.1/LuaJIT: the 5.4 API used here */

#define SM_VERSION        "0.1.0"
#define SM_CLIENT_MT      "sigmamind.client"
#define SM_ERROR_MT       "sigmamind.error"

/* ---- endpoint table (endpoints.c) ---------------------------------------------------------------------- */

enum sm_ftype {
  SM_T_STRING, SM_T_E164, SM_T_INT, SM_T_BOOL, SM_T_OBJECT, SM_T_EVENTS, SM_T_ENUM, SM_T_URL,
  SM_T_COUNTRY, SM_T_DATE, SM_T_TIME, SM_T_TZ, SM_T_BASE64, SM_T_FORBIDDEN
};

#define SM_REQUIRED  1u   /* must be present */
#define SM_NULLABLE  2u   /* core.null (JSON null) accepted */
#define SM_SECRET    4u   /* a credential: its value is never shown in a message */

/* cross-field rules */
enum sm_xcheck { SM_X_NONE, SM_X_SCHEDULE, SM_X_PROVISION };

typedef struct sm_field {
  const char *name;
  int type;                   /* enum sm_ftype */
  unsigned flags;
  long long min, max;         /* string: byte lengths; integer: value range */
  const char *const *choices; /* SM_T_ENUM: NULL-terminated */
} sm_field;

typedef struct sm_endpoint {
  const char *name;           /* "calls.create" */
  const char *method;         /* "GET", "POST", "PATCH", "DELETE" */
  const char *path;           /* template: "/v1/calls/{callId}" */
  const char *arg;            /* the path argument's name, or NULL */
  int arg_e164;               /* the path argument is an E.164 phone number */
  int body;                   /* params go in a JSON body (POST/PATCH), else in the query */
  int xcheck;                 /* enum sm_xcheck */
  const sm_field *fields;     /* terminated by { NULL } */
} sm_endpoint;

const sm_endpoint *sm_endpoint_find(const char *name);
const sm_endpoint *sm_endpoint_at(int i);   /* NULL past the end */
const sm_field *sm_endpoint_field(const sm_endpoint *ep, const char *name);   /* NULL: not declared */
void sm_push_endpoints(lua_State *L);       /* core.endpoints */

/* ---- validation (validate.c) ---------------------------------------------------------------------------- */

/* Each returns 1 when valid; else pushes nothing and fills field/message (message is a Lua string pushed on
   the stack) and returns 0. */
int sm_validate_params(lua_State *L, const sm_endpoint *ep, int params, const char **field);
int sm_validate_arg(lua_State *L, const sm_endpoint *ep, const char *s, size_t len);
int sm_is_e164(const char *s, size_t len);
int sm_utf8_valid(const char *s, size_t len);    /* well-formed UTF-8 (RFC 3629) */

/* ---- encoding (encode.c) -------------------------------------------------------------------------------- */

void sm_add_escaped(luaL_Buffer *b, const char *s, size_t len);
/* Pushes "?k=v&..." for the params table ("" when none). Returns 1, or 0 with a message pushed and the
   offending key in *field. */
int sm_push_query(lua_State *L, const sm_endpoint *ep, int params, const char **field);
/* Pushes a copy of an encoded path with E.164 numbers masked (+1415***4444), for on_event. */
void sm_push_masked_path(lua_State *L, const char *path, size_t len);

/* ---- JSON (json.c) -------------------------------------------------------------------------------------- */

#define SM_JSON_MAX_DEPTH 1000    /* cjson's encode_max_depth and decode_max_depth */

int sm_json_encode(lua_State *L, int idx);       /* pushes string (1) or nil, msg (0: two values) */
int sm_json_decode(lua_State *L, const char *s, size_t len); /* pushes value (1) or nil, msg (0) */
void sm_push_null(lua_State *L);

/* ---- errors (error.c) ----------------------------------------------------------------------------------- */

void sm_error_init(lua_State *L);                /* creates the error metatable */
void sm_error_setmeta(lua_State *L, int idx);    /* gives the table at idx the error metatable */
int sm_error_new(lua_State *L);                  /* core.error */
int sm_error_is(lua_State *L);                   /* core.is_error */
const char *sm_reason_phrase(long status);
/* Pushes an `invalid` error: method/path of the request, field and message (message at stack top, popped). */
void sm_push_invalid(lua_State *L, const char *method, const char *path, const char *field);

/* ---- crypto (crypto.c) ---------------------------------------------------------------------------------- */

int sm_base64_valid(const char *s, size_t len);  /* strict RFC 4648 with padding */
int sm_base64_encode_l(lua_State *L);
int sm_base64_decode_l(lua_State *L);
int sm_hmac_sha256_l(lua_State *L);
int sm_consteq_l(lua_State *L);

/* ---- the client (client.c) ------------------------------------------------------------------------------ */

void sm_client_init(lua_State *L);               /* creates the client metatable */
int sm_client_new(lua_State *L);                 /* core.new */
int sm_validate_l(lua_State *L);                 /* core.validate */

/* ---- time (core.c) -------------------------------------------------------------------------------------- */

double sm_now(void);
void sm_sleep(double seconds);

/* ---- transfers (transfer.c) ------------------------------------------------------------------------------
   One attempt of one request over one easy handle, split so that a multi handle can drive the same attempt
   later: sm_xfer_setup configures, the caller performs (blocking or multi), sm_xfer_classify reads the result. */

typedef struct sm_buf { char *data; size_t len, cap; } sm_buf;

typedef struct sm_xfer {
  CURL *easy;
  sm_buf body;                 /* response body, reused across attempts and requests */
  size_t max_bytes;            /* max_response_bytes */
  long header_status;          /* status from the last status line seen by the header callback */
  int too_large, oom;
  int no_resend;               /* this attempt must not be resent by libcurl's own reconnect logic (POST) */
  int prereq;                  /* times a request was about to go out on a connection in this attempt */
  int resend_blocked;          /* libcurl wanted to resend on a fresh connection and we refused */
  char request_id[128];
  char retry_after[64];
  char errbuf[CURL_ERROR_SIZE];
  int date_seen, date_void;    /* Date headers seen in this response; 1: no clock from it (two Dates, an
                                  Age, which says a cache answered, or a Date that is no IMF-fixdate) */
  double date_offset;          /* with one Date and no void: its time minus this host's wall clock when it
                                  came, seconds (Date counts whole seconds: the server was up to 1 s ahead) */
} sm_xfer;

/* the request as prepared from (name, args, params): strings pinned on the Lua stack by the caller */
typedef struct sm_req {
  const sm_endpoint *ep;
  const char *url;
  const char *path; size_t path_len;
  const char *body; size_t body_len;   /* NULL for GET/DELETE */
} sm_req;

/* per-client settings an attempt needs */
typedef struct sm_cfg {
  double timeout, connect_timeout, deadline;
  long max_retries;
} sm_cfg;

enum sm_outcome { SM_OK, SM_FAIL, SM_RETRY };

/* one-time settings of an easy handle (callbacks, TLS, headers, share); returns a CURLcode */
CURLcode sm_xfer_init(sm_xfer *x, CURLSH *share, struct curl_slist *headers, const char *ca_file,
                      const char *proxy, const char *noproxy);
void sm_xfer_free(sm_xfer *x);
/* per attempt: method, URL, body, timeouts (budget: seconds left before the deadline) */
CURLcode sm_xfer_setup(sm_xfer *x, const sm_cfg *cfg, const sm_req *r, double budget, int *capped);
/* After the attempt finished with rc: pushes the value (SM_OK) or an error table (SM_FAIL / SM_RETRY);
   for SM_RETRY *delay is the wait the policy asks for (before the deadline cap) */
int sm_xfer_classify(lua_State *L, sm_xfer *x, const sm_req *r, CURLcode rc, int attempt, int capped,
                     double *delay);
void sm_buf_free(sm_buf *b);

/* ---- the attempt policy without libcurl (prepare.c), shared with Lua transports ----------------------------
   Each classifier pushes the value (SM_OK) or an error table (SM_FAIL / SM_RETRY); *delay: Retry-After. */
int sm_classify_http(lua_State *L, const sm_req *r, long status, const char *body, size_t len,
                     const char *request_id, const char *retry_after, double *delay);
int sm_classify_too_large(lua_State *L, const sm_req *r, long status, size_t max_bytes, const char *request_id);
/* no HTTP reply; kind "network" or "timeout"; sent: the request may have reached the server; fatal: retrying
   cannot help; capped: the attempt's timeout was cut short by the deadline */
int sm_classify_failure(lua_State *L, const sm_req *r, long status, const char *kind, const char *msg, int sent,
                        int fatal, int capped, const char *request_id);
double sm_parse_retry_after(const char *v);
double sm_backoff_at(int attempt, double u);      /* u: jitter in [0, 1) */
int sm_max_attempts(long max_retries);
/* the wait before the next attempt, or -1 to give up (no attempts left, or the deadline comes first) */
double sm_next_delay(const sm_cfg *cfg, int attempt, double retry_after, double u, double elapsed);
void sm_prepare_register(lua_State *L);           /* adds prepare/classify/mask_path to the table on top */

/* ---- the client (client.c) and its concurrent side (multi.c) -------------------------------------------- */

#include <stdint.h>

struct sm_slot;

typedef struct sm_client {
  int open;                    /* resources acquired and not yet released */
  int busy;                    /* a request is running: refuse re-entry (from on_event, say) */
  sm_xfer x;                   /* the blocking transfer: easy handle, response buffer, errbuf */
  CURLSH *share;
  struct curl_slist *headers;  /* X-API-Key, Content-Type, Accept, User-Agent, Expect: */
  char *base_url;              /* no trailing slash; a path prefix is kept */
  size_t base_len;
  char key_hint[4];            /* at most 3 characters of the key, for __tostring */
  const char *key;             /* the key in its `headers` entry, for sm_redact (never in Lua); */
  size_t key_len;              /* NULL for a key under 8 bytes, which could match plain words */
  sm_cfg cfg;
  uint64_t rng;                /* xorshift state for backoff jitter */
  long connects;               /* connections opened so far (keep-alive check) */
  int clock_known;             /* the last response had a usable Date header: then clock_offset is its */
  double clock_offset;         /* sm_xfer.date_offset; client:info().server_clock_offset */
  CURLM *multi;                /* concurrent transfers (multi.c), created on first use */
  struct sm_slot **slots;      /* pooled transfers, each with its own easy handle; owned by the client */
  size_t nslots;
  int nactive, ndone;          /* slots in the multi / finished and not yet reported */
} sm_client;

/* the client userdata's user values */
#define SM_UV_ON_EVENT 1
#define SM_UV_PINS     2       /* table: slot id -> { path, body, url } strings libcurl and sm_req point at */

sm_client *sm_check_open(lua_State *L, int idx);
/* after an attempt: the server's clock is the response's Date, or unknown when a response came without one
   (an attempt with no response leaves what was known) */
void sm_xfer_clock(sm_client *c, const sm_xfer *x);
/* validates (name, args, params) of a request: raises for misuse; returns the endpoint */
const sm_endpoint *sm_check_request(lua_State *L);
/* validates and pushes [path, body|nil] (and the URL with base); 0 with an invalid error pushed instead */
int sm_prepare(lua_State *L, const sm_endpoint *ep, int args, int params, const char *base, size_t blen,
               sm_req *r);
/* on_event (under lua_pcall, never from a libcurl callback); self: the client's stack index */
void sm_emit(lua_State *L, int self, const char *type, const sm_req *r, int attempt, long status,
             double elapsed, double delay, const char *kind);
double sm_backoff(sm_client *c, int attempt);
/* replaces the client's key by [REDACTED] in each string field of the table at idx */
void sm_redact(lua_State *L, const sm_client *c, int idx);
const char *sm_err_kind(lua_State *L, int err);
/* multi.c */
void sm_multi_register(lua_State *L);            /* adds _start/_retry/_perform/_cancel/_pending to the table on top */
void sm_multi_release(sm_client *c);             /* removes every easy handle from the multi, then frees all */

/* ---- journal (journal.c) -------------------------------------------------------------------------------- */

int sm_journal_append_l(lua_State *L);           /* core.journal_append(path, line) --> true | nil, msg, errno */
int sm_journal_truncate_l(lua_State *L);         /* core.journal_truncate(path, size) --> true | nil, msg, errno */
int sm_journal_lock_l(lua_State *L);             /* core.journal_lock(path) --> lock | nil, msg, errno */

#endif
