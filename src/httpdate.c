/* httpdate.c: the server's clock from a Date header. */
#include <ctype.h>
#include <string.h>
#include "httpdate.h"

/* An IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT", the only form an HTTP/1.1 server sends: RFC 9110 5.6.7)
   as Unix seconds, or -1. Parsed here rather than by curl_getdate, which reads every form there is through
   sscanf: some 10,000 instructions a response, 7 % of a whole create. */
static int two(const char *p) {
  return isdigit((unsigned char)p[0]) && isdigit((unsigned char)p[1]) ? (p[0] - '0') * 10 + (p[1] - '0') : -1;
}
double sm_imf_fixdate(const char *v, size_t n) {
  static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
  int day, mon, cc, yy, hh, mm, ss, y, i;
  long long days;
  if (n != 29 || v[3] != ',' || v[4] != ' ' || v[7] != ' ' || v[11] != ' ' || v[16] != ' ' || v[19] != ':' ||
      v[22] != ':' || memcmp(v + 25, " GMT", 4) != 0)
    return -1;
  day = two(v + 5); cc = two(v + 12); yy = two(v + 14); hh = two(v + 17); mm = two(v + 20); ss = two(v + 23);
  if (cc < 0 || yy < 0) return -1;
  for (mon = -1, i = 0; i < 12; i++) if (memcmp(v + 8, months + (size_t)3 * (size_t)i, 3) == 0) mon = i + 1;
  if (mon < 0 || day < 1 || day > 31 || hh < 0 || hh > 23 || mm < 0 || mm > 59 || ss < 0 || ss > 60) return -1;
  /* days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil) */
  y = cc * 100 + yy - (mon <= 2);
  {
    long long era = (y >= 0 ? y : y - 399) / 400;
    long long yoe = y - era * 400;
    long long doy = (153 * (mon + (mon > 2 ? -3 : 9)) + 2) / 5 + day - 1;
    long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    days = era * 146097 + doe - 719468;
  }
  return (double)days * 86400.0 + hh * 3600.0 + mm * 60.0 + ss;
}
