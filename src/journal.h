/* journal.h: durable appends and the dial lock (journal.c). Builds on nothing of ours. */
#ifndef SM_JOURNAL_H
#define SM_JOURNAL_H

#include "compat.h"

int l_core_journal_append(lua_State *L);         /* core.journal_append(path, line) --> true | nil, msg, errno */
int l_core_journal_truncate(lua_State *L);       /* core.journal_truncate(path, size) --> true | nil, msg, errno */
int l_core_journal_lock(lua_State *L);           /* core.journal_lock(path) --> lock | nil, msg, errno */

#endif
