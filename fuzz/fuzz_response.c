/* fuzz_response.c: the HTTP response path of transfer.c with libcurl's side played by the input: the
   header callback (status lines, Content-Length, X-Request-Id, Retry-After, Date), the body callback against
   max_response_bytes, libcurl's resend attempt (prereq), and sm_xfer_classify for any status, result code
   and body. It links transfer.o like any other caller; curl_easy_getinfo is defined here, so the linker takes
   it over libcurl's and it answers with the fuzzed status (nothing here touches the network). */
#define CURL_DISABLE_TYPECHECK 1        /* curl_easy_getinfo is a function here, not the checking macro */
#include <stdarg.h>
#include "fuzz_common.h"
#include "policy.h"
#include "transfer.h"

static long fuzz_status;

CURLcode curl_easy_getinfo(CURL *h, CURLINFO info, ...) {
  va_list ap;
  void *p;
  (void)h;
  va_start(ap, info);
  p = va_arg(ap, void *);
  va_end(ap);
  switch (info & CURLINFO_TYPEMASK) {
    case CURLINFO_LONG: *(long *)p = info == CURLINFO_RESPONSE_CODE ? fuzz_status : 0; break;
    case CURLINFO_DOUBLE: *(double *)p = 0; break;
    case CURLINFO_OFF_T: *(curl_off_t *)p = 0; break;
    default: *(void **)p = NULL; break;
  }
  return CURLE_OK;
}

static const CURLcode codes[] = {
  CURLE_OK, CURLE_OK, CURLE_OK, CURLE_OK, CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_CONNECT,
  CURLE_OPERATION_TIMEDOUT, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CONNECT_ERROR, CURLE_OUT_OF_MEMORY,
  CURLE_GOT_NOTHING, CURLE_RECV_ERROR, CURLE_SEND_ERROR, CURLE_FILESIZE_EXCEEDED, CURLE_WRITE_ERROR,
  CURLE_PARTIAL_FILE, CURLE_ABORTED_BY_CALLBACK, CURLE_SSL_CACERT_BADFILE, CURLE_URL_MALFORMAT
};

static int nendpoints;
static sm_xfer x;

/* hands n bytes to a callback from an exact-size heap copy, so reads past them are caught */
static size_t deliver(size_t (*cb)(char *, size_t, size_t, void *), const char *s, size_t n) {
  char *copy = (char *)malloc(n ? n : 1);
  size_t r;
  memcpy(copy, s, n);
  r = cb(copy, 1, n, &x);
  free(copy);
  return r;
}

static int run(lua_State *L) {
  fuzz_in *in = (fuzz_in *)lua_touserdata(L, 1);
  const sm_endpoint *ep = sm_endpoint_at((int)(fuzz_byte(in) % (unsigned)nendpoints));
  CURLcode rc = codes[fuzz_byte(in) % (sizeof codes / sizeof codes[0])];
  unsigned flags, mb, i, hi, lo;
  int capped, outcome;
  double delay;
  sm_req r;
  hi = fuzz_byte(in);
  lo = fuzz_byte(in);
  fuzz_status = (long)((hi << 8 | lo) % 1000);
  flags = fuzz_byte(in);
  mb = fuzz_byte(in);
  lua_settop(L, 0);

  memset(&r, 0, sizeof r);               /* fields this harness does not set (form, ...) are off */
  r.ep = ep; r.url = "http://127.0.0.1:1/v1/x"; r.path = ep->path; r.path_len = strlen(ep->path);
  r.body = ep->body ? "{}" : NULL; r.body_len = ep->body ? 2 : 0;
  x.max_bytes = mb == 0 ? 8u << 20 : (size_t)mb * 8;
  capped = flags & 1;                     /* the deadline cut this attempt's timeout short */
  if (sm_xfer_setup(&x, &r, capped ? 0.5 : 30.0, capped ? 0.5 : 10.0) != CURLE_OK) abort();
  for (i = 0; i < ((flags >> 1) & 3); i++) sm_xfer_on_prereq(&x, NULL, NULL, 0, 0);

  /* header lines up to the first empty line, each ending in a newline as libcurl delivers them */
  while (in->n > 0) {
    const char *line = (const char *)in->p;
    const uint8_t *nl = (const uint8_t *)memchr(in->p, '\n', in->n);
    size_t n = nl ? (size_t)(nl - in->p) + 1 : in->n;
    in->p += n; in->n -= n;
    if (n == 1 || (n == 2 && line[0] == '\r')) break;
    if (!nl) {
      char *full = (char *)malloc(n + 2);
      memcpy(full, line, n); full[n] = '\r'; full[n + 1] = '\n';
      if (deliver(sm_xfer_on_header, full, n + 2) != n + 2) rc = CURLE_WRITE_ERROR;
      free(full);
    } else if (deliver(sm_xfer_on_header, line, n) != n) rc = CURLE_WRITE_ERROR;
    if (rc == CURLE_WRITE_ERROR) break;
  }
  /* the body in up to two chunks, stopping where libcurl would (a short write) */
  if (rc != CURLE_WRITE_ERROR && in->n > 0) {
    size_t first = (flags >> 3) ? in->n * (flags >> 3) / 32 : in->n;
    if (deliver(sm_xfer_on_body, (const char *)in->p, first) != first) rc = CURLE_WRITE_ERROR;
    else if (in->n > first && deliver(sm_xfer_on_body, (const char *)in->p + first, in->n - first) != in->n - first)
      rc = CURLE_WRITE_ERROR;
  }

  outcome = sm_xfer_classify(L, &x, &r, rc, capped, &delay);
  if (outcome == SM_OK) {
    if (lua_gettop(L) != 1) abort();
  } else {
    if (lua_gettop(L) != 1 || lua_type(L, 1) != LUA_TTABLE) abort();
    if (outcome == SM_RETRY && delay > 60.0) abort();      /* Retry-After is capped at a minute */
    /* a POST must never be marked retryable after it may have been received, except on 429 */
    lua_getfield(L, 1, "retryable");
    lua_getfield(L, 1, "sent");
    if (ep->body && strcmp(ep->method, "POST") == 0 && lua_toboolean(L, -2) && lua_toboolean(L, -1) &&
        !(rc == CURLE_OK && fuzz_status == 429)) abort();
    lua_pop(L, 2);
    luaL_tolstring(L, 1, NULL);
  }
  return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc; (void)argv;
  fuzz_L = fuzz_state();
  while (sm_endpoint_at(nendpoints)) nendpoints++;
  if (!(x.easy = curl_easy_init())) abort();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_read(run, data, size);
  fuzz_end(fuzz_L);
  return 0;
}
