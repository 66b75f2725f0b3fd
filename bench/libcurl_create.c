/* bench child: N sequential POSTs with libcurl's easy interface from C, no Lua and no decoding: the
   floor for any client built on curl_easy_perform (a diagnostic, not a peer).
   Usage: libcurl_create URL KEY BODY N */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static size_t sink(char *p, size_t s, size_t n, void *u) { (void)p; (void)u; return s * n; }

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  CURL *e;
  struct curl_slist *h = NULL;
  char kh[512];
  long i, n, errors = 0, status;
  double t0;
  clock_t c0;
  if (argc != 5) { fprintf(stderr, "usage: %s URL KEY BODY N\n", argv[0]); return 2; }
  n = atol(argv[4]);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  e = curl_easy_init();
  snprintf(kh, sizeof kh, "X-API-Key: %s", argv[2]);
  h = curl_slist_append(h, kh);
  h = curl_slist_append(h, "Content-Type: application/json");
  h = curl_slist_append(h, "Accept: application/json");
  curl_easy_setopt(e, CURLOPT_URL, argv[1]);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, argv[3]);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sink);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
  if (curl_easy_perform(e) != CURLE_OK) { fprintf(stderr, "libcurl_create: first request failed\n"); return 1; }
  t0 = now();
  c0 = clock();
  for (i = 1; i < n; i++) {
    if (curl_easy_perform(e) != CURLE_OK) errors++;
    else if (curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK && status != 201) errors++;
  }
  printf("count=%ld elapsed=%.6f cpu=%.6f errors=%ld\n", n - 1, now() - t0, (double)(clock() - c0) / CLOCKS_PER_SEC,
         errors);
  curl_slist_free_all(h);
  curl_easy_cleanup(e);
  curl_global_cleanup();
  return 0;
}
