/* interrupt.h: Ctrl-C while the core blocks (interrupt.c). During a blocking transfer, a wait before a retry,
   a multi poll or core.sleep, SIGINT only sets a flag that the wait checks (libcurl's progress callback, the
   sleep, the poll loop), so it ends within moments; then the previous handler is put back and, when SIGINT
   came, raised again: the host does what it does with Ctrl-C (lua.c: "interrupted!" at the next Lua
   instruction; no handler: the process ends). Builds on nothing of ours. */
#ifndef SM_INTERRUPT_H
#define SM_INTERRUPT_H

#include <signal.h>

typedef struct sm_sigint {
  struct sigaction old;        /* the handler put back at the end */
  int installed;               /* ours is in place: neither ignored before nor already ours (an outer wait's) */
} sm_sigint;

void sm_sigint_begin(sm_sigint *s);
int sm_sigint_pending(void);               /* SIGINT came since the outermost begin */
/* Puts the previous handler back and raises SIGINT again when it came (the outermost wait only). Call it
   where no Lua code runs before returning to Lua. Returns whether SIGINT came. */
int sm_sigint_end(sm_sigint *s);
int sm_sigint_sleep(double seconds);       /* sleeps; 1 when cut short by SIGINT */

#endif
