/* interrupt.c: SIGINT while the core blocks. The one piece of process-wide C state besides libcurl's: a
   signal handler can only tell a flag. The handler is installed around each blocking wait, never for long. */
#include <errno.h>
#include <string.h>
#include <time.h>
#include "interrupt.h"

static volatile sig_atomic_t sigint_seen = 0;

static void on_sigint(int sig) {
  (void)sig;
  sigint_seen = 1;
}

void sm_sigint_begin(sm_sigint *s) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigint;          /* no SA_RESTART: a poll or a sleep returns at once with EINTR */
  sigemptyset(&sa.sa_mask);
  s->installed = 0;
  if (sigaction(SIGINT, &sa, &s->old) != 0) return;
  if (!(s->old.sa_flags & SA_SIGINFO) && s->old.sa_handler == on_sigint) return;  /* an outer wait's */
  if (!(s->old.sa_flags & SA_SIGINFO) && s->old.sa_handler == SIG_IGN) {
    sigaction(SIGINT, &s->old, NULL);                 /* Ctrl-C is ignored here: so it stays */
    return;
  }
  s->installed = 1;                   /* the flag is clear: only this handler sets it, and end clears it */
}

int sm_sigint_pending(void) {
  return sigint_seen != 0;
}

int sm_sigint_end(sm_sigint *s) {
  int seen;
  if (!s->installed) return 0;
  sigaction(SIGINT, &s->old, NULL);
  s->installed = 0;
  seen = sigint_seen != 0;
  sigint_seen = 0;
  if (seen) raise(SIGINT);            /* now to the handler the host set */
  return seen;
}

int sm_sigint_sleep(double seconds) {
  struct timespec ts;
  if (sigint_seen) return 1;
  if (!(seconds > 0)) return 0;
  ts.tv_sec = (time_t)seconds;
  ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
  if (ts.tv_nsec > 999999999L) ts.tv_nsec = 999999999L;
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    if (sigint_seen) return 1;
  return 0;
}
