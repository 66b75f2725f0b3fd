/* journal.c: durable appends for the dialer's journal: each line is on disk (fsync) before the call it announces
   is placed, so a crash at any moment leaves a record of intent; and the lock that keeps a second dial off a
   journal in use. */
#define _DEFAULT_SOURCE 1         /* flock(2): a BSD lock, held by the open file, not the process (as fcntl's are) */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include "journal.h"

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

/* write all of buf at the end of fd (O_APPEND): 0, or -1 with errno */
static int write_all(int fd, const char *buf, size_t len) {
  size_t off = 0;
  while (off < len) {
    ssize_t w = write(fd, buf + off, len - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) { if (w == 0) errno = EIO; return -1; }
    off += (size_t)w;
  }
  return 0;
}

/* core.journal_append(path, line) --> true | nil, msg, errno: the line whole on disk (fsync), or not at all.
   The dial's lock keeps every other writer off, so the size before the write is where this record starts: a
   write or fsync that fails (ENOSPC after part of the line fitted) is cut back to it, and the next record is never
   glued onto a fragment that a reader would file under the wrong number. */
int l_core_journal_append(lua_State *L) {
  size_t len;
  const char *path = journal_path(L, 1);
  const char *line = luaL_checklstring(L, 2, &len);
  struct stat st;
  off_t start;
  char last;
  int fd, e, cut;
  if (!path) return push_bad_path(L);
  /* O_RDWR: its last byte is read below */
  do fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600); while (fd < 0 && errno == EINTR);
  if (fd < 0) return push_failure(L, path, errno, NULL);
  if (fstat(fd, &st) != 0) goto fail_close;
  start = st.st_size;
  /* a fragment an earlier cut-back could not remove: this record starts on a line of its own, so that it reads
     as itself and the fragment as a damaged line (which stops the next dial) rather than one glued record */
  if (start > 0 && len > 0 && line[0] != '\n') {
    ssize_t r;
    do r = pread(fd, &last, 1, start - 1); while (r < 0 && errno == EINTR);
    if (r < 0) goto fail_close;
    if (r == 1 && last != '\n' && write_all(fd, "\n", 1) != 0) goto fail_cut;
  }
  if (write_all(fd, line, len) != 0 || fsync(fd) != 0) goto fail_cut;
  if (close(fd) != 0 && errno != EINTR) return push_failure(L, path, errno, NULL);
  lua_pushboolean(L, 1);
  return 1;
fail_cut:
  e = errno;
  do cut = ftruncate(fd, start); while (cut != 0 && errno == EINTR);
  if (cut != 0) {
    int ce = errno;
    close(fd);
    luaL_pushfail(L);
    lua_pushfstring(L, "%s: %s (and the part written could not be removed: %s)", path, strerror(e), strerror(ce));
    lua_pushinteger(L, e);
    return 3;
  }
  (void)fsync(fd);
  close(fd);
  return push_failure(L, path, e, NULL);
fail_close:
  e = errno;
  close(fd);
  return push_failure(L, path, e, NULL);
}

/* core.journal_truncate(path, size) --> true | nil, msg, errno: cut the journal back to its first `size` bytes
   (a torn last record, before anything is appended after it) and fsync; never makes it longer */
int l_core_journal_truncate(lua_State *L) {
  const char *path = journal_path(L, 1);
  lua_Integer size = luaL_checkinteger(L, 2);
  struct stat st;
  int fd, e, r;
  luaL_argcheck(L, size >= 0, 2, "expected a size >= 0");
  if (!path) return push_bad_path(L);
  do fd = open(path, O_WRONLY | O_CLOEXEC); while (fd < 0 && errno == EINTR);
  if (fd < 0) return push_failure(L, path, errno, NULL);
  if (fstat(fd, &st) != 0) goto fail_close;
  if ((uintmax_t)size > (uintmax_t)st.st_size) { errno = EINVAL; goto fail_close; }
  do r = ftruncate(fd, (off_t)size); while (r != 0 && errno == EINTR);
  if (r != 0 || fsync(fd) != 0) goto fail_close;
  if (close(fd) != 0 && errno != EINTR) return push_failure(L, path, errno, NULL);
  lua_pushboolean(L, 1);
  return 1;
fail_close:
  e = errno;
  close(fd);
  return push_failure(L, path, e, NULL);
}

static int l_lock_release(lua_State *L) {
  int *fd = (int *)luaL_checkudata(L, 1, LOCK_MT);
  if (*fd >= 0) { close(*fd); *fd = -1; }      /* closing the file releases its flock */
  return 0;
}

/* core.journal_lock(path) --> lock | nil, msg, errno: an exclusive flock on the journal (created if need be),
   taken without waiting; held until lock:release(), its collection or the process's end (even kill -9) */
int l_core_journal_lock(lua_State *L) {
  const char *path = journal_path(L, 1);
  int *ud, fd, e;
  if (!path) return push_bad_path(L);
  ud = (int *)lua_newuserdatauv(L, sizeof(int), 0);
  *ud = -1;
  if (luaL_newmetatable(L, LOCK_MT)) {
    lua_pushcfunction(L, l_lock_release); lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, l_lock_release); lua_setfield(L, -2, "__close");
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, l_lock_release); lua_setfield(L, -2, "release");
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
