/* multi.c: concurrent requests. A curl multi handle per client (created on first use) drives pooled transfers
   without blocking: Lua starts one with _start, drives them all with _perform(timeout) and gets back those that
   finished, each already classified by the blocking loop's policy (value, error, or retry after a delay). The wait
   before a retry is the Lua scheduler's (a timer in its loop), never a sleep here; _retry starts the next attempt.
   libcurl's callbacks touch only C memory (transfer.c); on_event runs here, between libcurl calls.

   Each _perform's work is bounded, whatever is queued, so that a host calling poll(0) every frame stays inside
   it: started transfers wait in a queue of ours and go into libcurl at most MAX_IN_FLIGHT at a time; the
   loop is libcurl's socket interface (we poll the sockets libcurl names, and hand it each ready one with
   curl_multi_socket_action), so a _perform acts on ready sockets for at most SOCKET_BUDGET and touches only
   the transfers whose sockets are ready, never all of them as curl_multi_perform does; and completing the
   finished ones stops after REPORT_BUDGET. What is left waits, in order, for the next _perform. */
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include "multi.h"
#include "attempt.h"
#include "clock.h"
#include "interrupt.h"
#include "options.h"
#include "request.h"

/* a slot's life: FREE -> (_start) QUEUED -> ACTIVE (in libcurl) -> DONE (finished, not yet reported) -> FREE,
   or WAIT (reported "retry") -> (_retry) QUEUED again */
enum { SLOT_FREE, SLOT_QUEUED, SLOT_ACTIVE, SLOT_DONE, SLOT_WAIT };

typedef struct sm_slot {
  sm_xfer x;                   /* first: libcurl's callbacks get &slot->x */
  sm_attempt a;                /* its request points into the strings pinned in the client's SM_UV_PINS table */
  int state;
  CURLcode rc;
  size_t index;                /* in the client's slots; its transfer id is index + 1 */
  struct sm_slot *next;        /* SLOT_QUEUED, SLOT_DONE: the next in the client's queue of that state */
} sm_slot;

/* At most this many transfers are in libcurl at once (so many connections to the API, kept alive): it bounds
   the work of one curl_multi_perform and the load on the server. The rest wait in the client's queue. */
#define MAX_IN_FLIGHT 64

/* How many queued transfers one _perform hands to libcurl (their attempts were begun at _start or _retry), and
   how long it may spend acting on ready sockets and completing finished transfers (decoding, on_event), in
   seconds. A transfer handed over costs its connect and its send in the same _perform, in one libcurl call that
   no budget can cut short: hence a count. What is left waits, in order, for the next _perform, so that a
   poll(0) with many transfers starting or finishing at once stays within a host's frame; at least one of each
   is done each time. */
#define FILL_MAX 32
#define SOCKET_BUDGET 0.001
#define REPORT_BUDGET 0.001

void sm_multi_release(sm_client *c) {
  size_t i;
  for (i = 0; i < c->nslots; i++) {
    sm_slot *s = c->slots[i];
    if (!s) continue;
    if (s->state == SLOT_ACTIVE && c->multi) curl_multi_remove_handle(c->multi, s->x.easy);
    sm_xfer_free(&s->x);
    free(s);
  }
  free(c->slots);
  c->slots = NULL;
  c->nslots = 0;
  c->nactive = 0;
  memset(&c->done, 0, sizeof c->done);
  memset(&c->queued, 0, sizeof c->queued);
  if (c->multi) { curl_multi_cleanup(c->multi); c->multi = NULL; }    /* its socket callbacks first */
  free(c->socks);
  free(c->ready);
  c->socks = c->ready = NULL;
  c->nsocks = c->socks_cap = 0;
}

/* ---- the two queues (started, finished): FIFO lists through sm_slot.next ----------------------------- */

/* s joins the end of q, in `state` */
static void q_push(sm_queue *q, sm_slot *s, int state) {
  s->state = state;
  s->next = NULL;
  if (q->tail) q->tail->next = s;
  else q->head = s;
  q->tail = s;
  q->n++;
}

static void q_unlink(sm_queue *q, sm_slot *s) {
  sm_slot **p = &q->head, *prev = NULL;
  while (*p && *p != s) { prev = *p; p = &(*p)->next; }
  if (!*p) return;
  *p = s->next;
  if (q->tail == s) q->tail = prev;
  s->next = NULL;
  q->n--;
}

/* ---- libcurl's socket interface: the sockets it wants watched, and its timer ---------------------------- */

/* CURLMOPT_SOCKETFUNCTION: libcurl says what to wait for on fd (or to forget it); C only. Out of memory it
   returns -1, which makes libcurl mark the whole multi handle dead (every transfer in it fails, it calls the
   timer callback no more): perform_run then replaces it (renew_multi) */
static int on_socket(CURL *easy, curl_socket_t fd, int what, void *clientp, void *socketp) {
  sm_client *c = (sm_client *)clientp;
  size_t i;
  (void)easy; (void)socketp;
  for (i = 0; i < c->nsocks && c->socks[i].fd != fd; i++) {}
  if (what == CURL_POLL_REMOVE) {
    if (i < c->nsocks) c->socks[i] = c->socks[--c->nsocks];
    return 0;
  }
  if (i == c->nsocks) {
    if (c->nsocks == c->socks_cap) {
      size_t cap = c->socks_cap ? 2 * c->socks_cap : 16;
      struct pollfd *socks = (struct pollfd *)realloc(c->socks, cap * sizeof *socks), *ready;
      if (!socks) return -1;
      c->socks = socks;
      if (!(ready = (struct pollfd *)realloc(c->ready, cap * sizeof *ready))) return -1;
      c->ready = ready;
      c->socks_cap = cap;
    }
    c->socks[i].fd = fd;
    c->nsocks++;
  }
  c->socks[i].events = (short)(((what & CURL_POLL_IN) ? POLLIN : 0) | ((what & CURL_POLL_OUT) ? POLLOUT : 0));
  c->socks[i].revents = 0;
  return 0;
}

/* CURLMOPT_TIMERFUNCTION: when libcurl wants to be called for its timeouts (0: at once, -1: never) */
static int on_timer(CURLM *multi, long timeout_ms, void *clientp) {
  sm_client *c = (sm_client *)clientp;
  (void)multi;
  c->timer_at = timeout_ms < 0 ? -1 : sm_now() + (double)timeout_ms / 1000;
  return 0;
}

/* ---- slots ----------------------------------------------------------------------------------------------- */

static void push_pins(lua_State *L, int self) {
  if (lua_getiuservalue(L, self, SM_UV_PINS) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setiuservalue(L, self, SM_UV_PINS);
  }
}

/* A slot's pinned strings are PINS values in the client's pins table, flat at (slot index) * PINS + 1..PINS:
   a table per transfer would cost every request an allocation and its collection. */
#define PINS 4

/* pins the PINS values on top of the stack (popped) for slot i */
static void set_pins(lua_State *L, int self, size_t i) {
  int k, top = lua_gettop(L);
  lua_Integer base = (lua_Integer)i * PINS;
  push_pins(L, self);
  for (k = 1; k <= PINS; k++) {
    lua_pushvalue(L, top - PINS + k);
    lua_rawseti(L, -2, base + k);
  }
  lua_pop(L, 1 + PINS);
}

static void clear_pins(lua_State *L, int self, size_t i) {
  int k;
  lua_Integer base = (lua_Integer)i * PINS;
  push_pins(L, self);
  for (k = 1; k <= PINS; k++) {
    lua_pushnil(L);
    lua_rawseti(L, -2, base + k);
  }
  lua_pop(L, 1);
}

/* the client's multi handle, made when there is none; NULL when libcurl cannot make one */
static CURLM *need_multi(sm_client *c) {
  if (c->multi) return c->multi;
  if (!(c->multi = curl_multi_init())) return NULL;
  /* as many connections as transfers in flight, kept alive between them: fewer in the cache would be
     closed and opened again as transfers come and go (each costs a connect, and a TLS handshake) */
  curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)MAX_IN_FLIGHT);
  curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, (long)MAX_IN_FLIGHT);
  c->timer_at = -1;
  curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
  curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, (void *)c);
  curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_timer);
  curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, (void *)c);
  return c->multi;
}

/* libcurl marked the multi dead (a socket callback failed: out of memory): nothing in it will ever progress
   and its timer callback is called no more. Its transfers finish as failed (out of memory, as libcurl would
   have it) and a new multi takes its place at the next launch, so that the client keeps working. C only. */
static void renew_multi(sm_client *c) {
  size_t i;
  for (i = 0; i < c->nslots; i++) {
    sm_slot *s = c->slots[i];
    if (s->state != SLOT_ACTIVE) continue;
    curl_multi_remove_handle(c->multi, s->x.easy);
    c->nactive--;
    s->rc = CURLE_OUT_OF_MEMORY;
    q_push(&c->done, s, SLOT_DONE);
  }
  curl_multi_cleanup(c->multi);             /* the connections stay in the share's cache */
  c->multi = NULL;
  c->nsocks = 0;
  c->timer_at = -1;
}

/* a free slot (its easy handle kept from earlier use, for keep-alive and fewer allocations); returns its index */
static size_t get_slot(lua_State *L, sm_client *c) {
  size_t i, n;
  sm_slot **grown, *s;
  CURLcode rc;
  for (i = 0; i < c->nslots; i++)
    if (c->slots[i]->state == SLOT_FREE) return i;
  if (!need_multi(c)) luaL_error(L, "sigmamind: curl_multi_init failed");
  n = c->nslots;
  /* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers; v14 mistakes it for sizeof(A *) */
  grown = (sm_slot **)realloc(c->slots, (n + 1) * sizeof *grown);
  if (!grown) luaL_error(L, "sigmamind: out of memory");
  c->slots = grown;
  if (!(s = (sm_slot *)calloc(1, sizeof *s))) luaL_error(L, "sigmamind: out of memory");
  /* the blocking handle's options (TLS, proxy, CA file, share, headers), then our own buffers and callbacks;
     both freed before raising, so the slot joins the pool only when complete */
  s->x.easy = curl_easy_duphandle(c->x.easy);
  s->x.max_bytes = c->x.max_bytes;
  s->x.keep_nulls = c->x.keep_nulls;       /* not interruptible: Ctrl-C ends the wait in _perform instead */
  rc = s->x.easy ? sm_xfer_init(&s->x, c->share, c->headers, NULL, NULL, NULL) : CURLE_OUT_OF_MEMORY;
  if (rc == CURLE_OK) rc = curl_easy_setopt(s->x.easy, CURLOPT_PRIVATE, (void *)s);
  if (rc != CURLE_OK) {
    sm_xfer_free(&s->x);
    free(s);
    luaL_error(L, "sigmamind: cannot set up a transfer: %s", curl_easy_strerror(rc));
  }
  s->index = n;
  c->slots[n] = s;                          /* owned by the client from here on */
  c->nslots = n + 1;
  return n;
}

static sm_slot *slot_by_id(lua_State *L, sm_client *c, int arg) {
  lua_Integer id = luaL_checkinteger(L, arg);
  luaL_argcheck(L, id >= 1 && (size_t)id <= c->nslots && c->slots[id - 1]->state != SLOT_FREE, arg,
                "no such transfer");
  return c->slots[id - 1];
}

static void free_slot(lua_State *L, sm_client *c, int self, size_t i) {
  c->slots[i]->state = SLOT_FREE;
  c->slots[i]->a.r.ep = NULL;
  clear_pins(L, self, i);
}

/* a queued slot (its attempt begun: _start, _retry) into the multi. One libcurl cannot take finishes at once as
   out of memory, classified and reported as any other failure. C only. */
static void launch(sm_client *c, sm_slot *s) {
  q_unlink(&c->queued, s);
  if (!need_multi(c) || curl_multi_add_handle(c->multi, s->x.easy) != CURLM_OK) {
    s->rc = CURLE_OUT_OF_MEMORY;
    q_push(&c->done, s, SLOT_DONE);
    return;
  }
  s->state = SLOT_ACTIVE;
  c->nactive++;
}

/* hands queued transfers to libcurl, the oldest first, while fewer than MAX_IN_FLIGHT are in it, at most
   FILL_MAX of them */
static void fill(sm_client *c) {
  int n = 0;
  while (c->queued.head && c->nactive < MAX_IN_FLIGHT && n++ < FILL_MAX) launch(c, c->queued.head);
}

/* ---- the methods, each run protected with the client's busy flag set (on_event must not re-enter) --------- */

/* stack: self, name, args, params, opts */
static int start_run(lua_State *L) {
  sm_client *c = (sm_client *)lua_touserdata(L, 1);
  sm_attempt a;
  size_t i;
  sm_slot *s;
  CURLcode rc;
  if (!sm_attempt_open(L, 1, &a)) return 2;
  i = get_slot(L, c);
  set_pins(L, 1, i);      /* path, body or nil, url, headers or nil on top: pinned for the life of the transfer */
  s = c->slots[i];
  s->a = a;
  /* the first attempt begins here, in the caller's turn (on_event "request" comes from inside its task, as
     for a blocking request); libcurl gets it at a _perform, in turn */
  rc = sm_attempt_begin(L, 1, &s->a, &s->x);
  if (rc != CURLE_OK) {
    free_slot(L, c, 1, i);
    return luaL_error(L, "sigmamind: cannot set up the transfer: %s", curl_easy_strerror(rc));
  }
  q_push(&c->queued, s, SLOT_QUEUED);
  lua_pushinteger(L, (lua_Integer)i + 1);
  return 1;
}

/* stack: self, id */
static int retry_run(lua_State *L) {
  sm_client *c = (sm_client *)lua_touserdata(L, 1);
  sm_slot *s = slot_by_id(L, c, 2);
  CURLcode rc;
  luaL_argcheck(L, s->state == SLOT_WAIT, 2, "transfer is not waiting for a retry");
  rc = sm_attempt_begin(L, 1, &s->a, &s->x);       /* the next attempt begins now, as _start's first */
  if (rc != CURLE_OK) {
    free_slot(L, c, 1, (size_t)lua_tointeger(L, 2) - 1);
    return luaL_error(L, "sigmamind: cannot set up the transfer: %s", curl_easy_strerror(rc));
  }
  q_push(&c->queued, s, SLOT_QUEUED);
  lua_pushboolean(L, 1);
  return 1;
}

/* moves finished transfers out of the multi; C only, so nothing is lost to a Lua error */
static void collect(sm_client *c) {
  CURLMsg *m;
  int left;
  while ((m = curl_multi_info_read(c->multi, &left)) != NULL) {
    sm_slot *s = NULL;
    if (m->msg != CURLMSG_DONE) continue;
    curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&s);
    if (!s || s->state != SLOT_ACTIVE) continue;
    s->rc = m->data.result;
    curl_multi_remove_handle(c->multi, s->x.easy);
    c->nactive--;
    q_push(&c->done, s, SLOT_DONE);
  }
}

/* completes a finished attempt (attempt.c, as the blocking loop does) and pushes its record
   { id, "ok"|"fail"|"retry", value|err, delay|nil, meta|nil } */
static void report(lua_State *L, sm_client *c, size_t i) {
  sm_slot *s = c->slots[i];
  double delay;
  int outcome = sm_attempt_finish(L, 1, &s->a, &s->x, s->rc, &delay);
  if (outcome == SM_OK) lua_insert(L, -2);  /* the metadata under the value */
  lua_createtable(L, 5, 0);
  lua_pushinteger(L, (lua_Integer)i + 1);
  lua_rawseti(L, -2, 1);
  lua_pushstring(L, outcome == SM_OK ? "ok" : outcome == SM_RETRY ? "retry" : "fail");
  lua_rawseti(L, -2, 2);
  lua_insert(L, -2);
  lua_rawseti(L, -2, 3);
  if (outcome == SM_RETRY) { lua_pushnumber(L, delay); lua_rawseti(L, -2, 4); }
  if (outcome == SM_OK) { lua_insert(L, -2); lua_rawseti(L, -2, 5); }
  /* the record is complete: only now does the slot change state */
  q_unlink(&c->done, s);
  if (outcome == SM_RETRY) s->state = SLOT_WAIT;
  else free_slot(L, c, 1, i);
}

/* libcurl's timeouts, when due */
static CURLMcode run_timer(sm_client *c) {
  int running;
  if (c->timer_at < 0 || sm_now() < c->timer_at) return CURLM_OK;
  c->timer_at = -1;                         /* libcurl sets it again as it needs */
  return curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
}

/* waits up to wait_ms for the sockets, then hands the ready ones to libcurl, starting where the last time
   stopped, until `stop`; returns the poll's result (-1 on EINTR: Ctrl-C), -2 on a libcurl failure (*mc), -3 when
   poll itself failed (errno) */
static int run_sockets(sm_client *c, int wait_ms, double stop, CURLMcode *mc) {
  size_t i, n = 0, first;
  int got = poll(c->socks, (nfds_t)c->nsocks, wait_ms), running;
  if (got < 0 && errno != EINTR) return -3;               /* not to spin on it until the end */
  if (got <= 0) return got;
  for (i = 0; i < c->nsocks; i++)           /* copied: acting on one may change c->socks */
    if (c->socks[i].revents) c->ready[n++] = c->socks[i];
  first = n ? c->rotor++ % n : 0;
  for (i = 0; i < n; i++) {
    const struct pollfd *p = &c->ready[(first + i) % n];
    int mask = 0;
    if (p->revents & (POLLIN | POLLERR | POLLHUP)) mask |= CURL_CSELECT_IN;
    if (p->revents & (POLLOUT | POLLERR)) mask |= CURL_CSELECT_OUT;
    if (p->revents & POLLNVAL) mask |= CURL_CSELECT_ERR;
    if ((*mc = curl_multi_socket_action(c->multi, p->fd, mask, &running)) != CURLM_OK) return -2;
    if (sm_now() >= stop) break;            /* the rest are still ready at the next poll */
  }
  return got;
}

/* stack: self, timeout. Returns an array of records, or nothing when no transfer finished. */
static int perform_run(lua_State *L) {
  sm_client *c = (sm_client *)lua_touserdata(L, 1);
  double timeout = lua_tonumber(L, 2), now = sm_now(), until = now + timeout, stop = now + SOCKET_BUDGET;
  int n = 0, wait_ms = 0;
  if (c->nactive == 0 && c->done.n == 0 && c->queued.n == 0) return 0;
  fill(c);
  while (c->multi) {                        /* none (renew_multi, or none could be made): nothing is active */
    CURLMcode mc = run_timer(c);
    double left, due;
    int got = mc == CURLM_OK ? run_sockets(c, wait_ms, stop, &mc) : 0;
    if (got == -3) return luaL_error(L, "sigmamind: poll: %s", strerror(errno));
    if (got == -2 && mc == CURLM_OK) mc = CURLM_INTERNAL_ERROR;
    if (mc == CURLM_ABORTED_BY_CALLBACK) { collect(c); renew_multi(c); break; }   /* on_socket: out of memory */
    if (mc != CURLM_OK) return luaL_error(L, "sigmamind: curl_multi_socket_action: %s", curl_multi_strerror(mc));
    collect(c);
    if (c->done.n > 0 || c->nactive == 0 || sm_sigint_pending()) break;   /* Ctrl-C: transfers stay as they are */
    now = sm_now();
    left = until - now;
    if (left < 0.001) break;
    /* nothing finished yet: wait for a socket, libcurl's next timeout or the end, whichever comes first */
    due = c->timer_at < 0 ? left : c->timer_at - now;
    if (due > left) due = left;
    wait_ms = due <= 0 ? 0 : due > 3600 ? 3600000 : (int)ceil(due * 1000);
    stop = now + wait_ms / 1000.0 + SOCKET_BUDGET;     /* the budget counts from when a socket is ready */
  }
  if (c->done.n == 0) return 0;
  lua_settop(L, 2);
  lua_createtable(L, c->done.n, 0);
  until = sm_now() + REPORT_BUDGET;
  do {                                                      /* the oldest first; at least one */
    report(L, c, c->done.head->index);
    lua_rawseti(L, 3, ++n);
  } while (c->done.head && sm_now() < until);
  return 1;
}

/* stack: self, id */
static int cancel_run(lua_State *L) {
  sm_client *c = (sm_client *)lua_touserdata(L, 1);
  sm_slot *s = slot_by_id(L, c, 2);
  if (s->state == SLOT_ACTIVE) { curl_multi_remove_handle(c->multi, s->x.easy); c->nactive--; }
  else if (s->state == SLOT_DONE) q_unlink(&c->done, s);
  else if (s->state == SLOT_QUEUED) q_unlink(&c->queued, s);
  free_slot(L, c, 1, (size_t)lua_tointeger(L, 2) - 1);
  lua_pushboolean(L, 1);
  return 1;
}

/* runs f protected with the busy flag set; the number of its results, or -1 with its error on top */
static int guarded_protected(lua_State *L, lua_CFunction f) {
  sm_client *c = sm_client_check_open(L, 1);
  int status;
  if (c->busy) return luaL_error(L, "sigmamind: client is busy (on_event must not use its own client)");
  c->busy = 1;
  lua_pushcfunction(L, f);
  lua_insert(L, 1);
  status = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
  c->busy = 0;
  return status == LUA_OK ? lua_gettop(L) : -1;
}

static int guarded(lua_State *L, lua_CFunction f) {
  int n = guarded_protected(L, f);
  return n < 0 ? lua_error(L) : n;
}

/* client:_start(name, args, params, opts) --> id | nil, err (invalid: nothing sent); opts as client:request's */
static int l_client_start(lua_State *L) {
  sm_reqopts o;
  sm_client_check_open(L, 1);
  sm_reqopts_check(L, 5, sm_request_check(L), &o);
  lua_settop(L, 5);
  return guarded(L, start_run);
}

/* client:_retry(id): the next attempt of a transfer reported "retry" */
static int l_client_retry(lua_State *L) {
  luaL_checkinteger(L, 2);
  lua_settop(L, 2);
  return guarded(L, retry_run);
}

/* client:_perform(timeout) --> { { id, "ok"|"fail"|"retry", value|err, delay|nil, meta|nil }, ... } | nothing.
   Ctrl-C (SIGINT) ends the wait (not the transfers) and then reaches the handler there before (interrupt.h). */
static int l_client_perform(lua_State *L) {
  double t = luaL_optnumber(L, 2, 0);
  sm_sigint si;
  int n;
  luaL_argcheck(L, t == t && t >= 0, 2, "expected a number of seconds >= 0");
  lua_settop(L, 2);
  if (t == 0) return guarded(L, perform_run);   /* no wait to cut short */
  if (sm_client_check_open(L, 1)->busy)         /* raised before the handler goes in */
    return luaL_error(L, "sigmamind: client is busy (on_event must not use its own client)");
  sm_sigint_begin(&si);
  n = guarded_protected(L, perform_run);
  sm_sigint_end(&si);
  if (n < 0) return lua_error(L);
  return n;
}

/* client:_cancel(id): forgets a transfer, removing it from the multi if it is in flight */
static int l_client_cancel(lua_State *L) {
  luaL_checkinteger(L, 2);
  lua_settop(L, 2);
  return guarded(L, cancel_run);
}

/* client:_pending() --> transfers in flight (in libcurl or queued for it), finished-but-unreported */
static int l_client_pending(lua_State *L) {
  sm_client *c = sm_client_check_open(L, 1);
  lua_pushinteger(L, c->nactive + c->queued.n);
  lua_pushinteger(L, c->done.n);
  return 2;
}

void sm_multi_register(lua_State *L) {
  static const luaL_Reg methods[] = {
    { "_start", l_client_start }, { "_retry", l_client_retry }, { "_perform", l_client_perform },
    { "_cancel", l_client_cancel }, { "_pending", l_client_pending }, { NULL, NULL }
  };
  luaL_setfuncs(L, methods, 0);
}
