/* journal.c: durable appends for the dialer's journal: each line is on disk (fsync) before the call it announces
   is placed, so a crash at any moment leaves a record of intent; and the lock that keeps a second dial off a
   journal in use. */
#define _DEFAULT_SOURCE 1         /* flock(2): a BSD lock, held by the open file, not the process (as fcntl's are) */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>
#include "sm.h"

#define LOCK_MT "sigmamind.journal_lock"

/* a path for open(2): the whole Lua string, so that one with a NUL byte is refused rather than cut short */
static const char *journal_path(lua_State *L, int idx) {
  size_t len;
  const char *path = luaL_checklstring(L, idx, &len);
  if (len == 0 || strlen(path) != len) return NULL;
  return path;
}

/* nil, "<path>: <what errno says>" (or `what`), errno: the failure of a journal call */
static int push_failure(lua_State *L, const char *path, int e, const char *what) {
  luaL_pushfail(L);
  lua_pushfstring(L, "%s: %s", path, what ? what : strerror(e));
  lua_pushinteger(L, e);
  return 3;
}

static int push_bad_path(lua_State *L) {
  luaL_pushfail(L);
  lua_pushliteral(L, "expected a file path (not empty, no NUL byte)");
  lua_pushinteger(L, EINVAL);
  return 3;
}

/* core.journal_append(path, line) --> true | nil, msg, errno: open(O_APPEND|O_CREAT), write all, fsync, close */
int sm_journal_append_l(lua_State *L) {
  size_t len, off = 0;
  const char *path = journal_path(L, 1);
  const char *line = luaL_checklstring(L, 2, &len);
  int fd, e;
  if (!path) return push_bad_path(L);
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
  return push_failure(L, path, errno, NULL);
}

static int lock_release(lua_State *L) {
  int *fd = (int *)luaL_checkudata(L, 1, LOCK_MT);
  if (*fd >= 0) { close(*fd); *fd = -1; }      /* closing the file releases its flock */
  return 0;
}

/* core.journal_lock(path) --> lock | nil, msg, errno: an exclusive flock on the journal (created if need be),
   taken without waiting; held until lock:release(), its collection or the process's end (even kill -9) */
int sm_journal_lock_l(lua_State *L) {
  const char *path = journal_path(L, 1);
  int *ud, fd, e;
  if (!path) return push_bad_path(L);
  ud = (int *)lua_newuserdatauv(L, sizeof(int), 0);
  *ud = -1;
  if (luaL_newmetatable(L, LOCK_MT)) {
    lua_pushcfunction(L, lock_release); lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, lock_release); lua_setfield(L, -2, "__close");
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, lock_release); lua_setfield(L, -2, "release");
    lua_setfield(L, -2, "__index");
  }
  lua_setmetatable(L, -2);
  do fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600); while (fd < 0 && errno == EINTR);
  if (fd < 0) goto fail;
  *ud = fd;
  while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EINTR) continue;
    e = errno;
    close(fd);
    *ud = -1;
    return push_failure(L, path, e, e == EWOULDBLOCK ? "in use by another dial (one journal, one dial at a time)"
                                                      : NULL);
  }
  return 1;
fail:
  return push_failure(L, path, errno, NULL);
}
