/* httpdate.h: the HTTP-date a server sends (httpdate.c). Builds on nothing. */
#ifndef SM_HTTPDATE_H
#define SM_HTTPDATE_H

#include <stddef.h>

/* An IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") as Unix seconds, or -1. */
double sm_imf_fixdate(const char *v, size_t n);

#endif
