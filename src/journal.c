/* journal.c: durable appends for the dialer's journal: each line is on disk (fsync) before the call it announces
   is placed, so a crash at any moment leaves a record of intent. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include "sm.h"

/* core.journal_append(path, line) --> true | nil, msg, errno: open(O_APPEND|O_CREAT), write all, fsync, close */
int sm_journal_append_l(lua_State *L) {
  size_t len, off = 0;
  const char *path = luaL_checkstring(L, 1);
  const char *line = luaL_checklstring(L, 2, &len);
  int fd, e;
  do fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600); while (fd < 0 && errno == EINTR);
  if (fd < 0) goto fail;
  while (off < len) {
    ssize_t w = write(fd, line + off, len - off);
    if (w < 0) { if (errno == EINTR) continue; goto fail_close; }
    off += (size_t)w;
  }
  if (fsync(fd) != 0) goto fail_close;
  if (close(fd) != 0 && errno != EINTR) goto fail;
  lua_pushboolean(L, 1);
  return 1;
fail_close:
  e = errno;
  close(fd);
  errno = e;
fail:
  e = errno;
  luaL_pushfail(L);
  lua_pushfstring(L, "%s: %s", path, strerror(e));
  lua_pushinteger(L, e);
  return 3;
}
