/* client.h: the client userdata (client.c), which owns the blocking transfer and the concurrent slots
   (multi.c). Builds on transfer.h and policy.h. */
#ifndef SM_CLIENT_H
#define SM_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include "transfer.h"
#include "policy.h"

#define SM_VERSION        "0.2.0"
#define SM_CLIENT_MT      "sigmamind.client"

struct sm_slot;
struct pollfd;

/* a FIFO of slots, linked through the slots themselves (multi.c) */
typedef struct sm_queue {
  struct sm_slot *head, *tail;
  int n;
} sm_queue;

typedef struct sm_client {
  int open;                    /* resources acquired and not yet released */
  int busy;                    /* a request is running: refuse re-entry (from on_event, say) */
  sm_xfer x;                   /* the blocking transfer: easy handle, response buffer, errbuf */
  CURLSH *share;
  struct curl_slist *headers;  /* X-API-Key, Content-Type, Accept, User-Agent, Expect: */
  char *base_url;              /* no trailing slash; a path prefix is kept */
  size_t base_len;
  char key_hint[4];            /* at most 3 characters of the key, for __tostring */
  const char *key;             /* the key in its `headers` entry, for redaction (never in Lua); */
  size_t key_len;              /* NULL for a key under 8 bytes, which could match plain words */
  sm_policy policy;
  uint64_t rng;                /* xorshift state for backoff jitter */
  long connects;               /* connections opened so far (keep-alive check) */
  int clock_known;             /* the last response had a usable Date header: then clock_offset is its */
  double clock_offset;         /* sm_xfer.date_offset; client:info().server_clock_offset */
  int campaign_form;           /* campaign_upload = "multipart": campaigns.create goes as a form (mime.c) */
  CURLM *multi;                /* concurrent transfers (multi.c), created on first use */
  struct sm_slot **slots;      /* pooled transfers, each with its own easy handle; owned by the client */
  size_t nslots;
  int nactive;                 /* slots in the multi */
  sm_queue done;               /* the finished ones not yet reported, in the order they finished (multi.c) */
  sm_queue queued;             /* the started ones not yet handed to libcurl, in the order they were started */
  struct pollfd *socks;        /* the multi's sockets and what libcurl waits for on each (multi.c) */
  struct pollfd *ready;        /* scratch: the ready ones of a poll, as (fd, revents); as large as socks */
  size_t nsocks, socks_cap;
  unsigned rotor;              /* where the next poll starts acting on ready sockets (fairness) */
  double timer_at;             /* when libcurl wants curl_multi_socket_action(CURL_SOCKET_TIMEOUT); < 0: never */
} sm_client;

/* the client userdata's user values */
#define SM_UV_ON_EVENT 1
#define SM_UV_PINS     2       /* table: each slot's path, body, url, headers (multi.c), which libcurl and
                                  sm_req point at */

sm_client *sm_client_check_open(lua_State *L, int idx);
void sm_client_init(lua_State *L);               /* creates the client metatable */
int l_core_new(lua_State *L);                    /* core.new(opts) --> client */

#endif
