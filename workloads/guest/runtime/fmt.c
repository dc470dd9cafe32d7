/* Console formatting (see fmt.h). No libc; compiled natively by the tests. */
#include "fmt.h"

struct out {
	char *buf;
	size_t size;
	size_t len;
};

static void put(struct out *o, char c)
{
	if (o->len + 1 < o->size)
		o->buf[o->len] = c;
	o->len++;
}

struct spec {
	int left;
	int zero;
	int width;
	int prec; /* -1 = none */
	int length; /* 0 int, 1 long, 2 long long, -1 short, -2 char */
};

static void pad(struct out *o, char c, int n)
{
	while (n-- > 0)
		put(o, c);
}

static void emit_str(struct out *o, const struct spec *s, const char *str)
{
	int n = 0;
	if (!str)
		str = "(null)";
	while (str[n] && (s->prec < 0 || n < s->prec))
		n++;
	if (!s->left)
		pad(o, ' ', s->width - n);
	for (int i = 0; i < n; i++)
		put(o, str[i]);
	if (s->left)
		pad(o, ' ', s->width - n);
}

/* Digits of v in base (2..16), most significant first; returns the count. */
static int to_digits(char *d, unsigned long long v, unsigned base, int upper)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char tmp[24];
	int n = 0;
	do {
		tmp[n++] = digits[v % base];
		v /= base;
	} while (v);
	for (int i = 0; i < n; i++)
		d[i] = tmp[n - 1 - i];
	return n;
}

static void emit_num(struct out *o, const struct spec *s, unsigned long long v, int neg,
		     unsigned base, int upper, const char *prefix)
{
	char d[24];
	int n = to_digits(d, v, base, upper);
	int plen = 0;
	while (prefix[plen])
		plen++;
	int total = n + neg + plen;
	if (!s->left && !s->zero)
		pad(o, ' ', s->width - total);
	if (neg)
		put(o, '-');
	for (int i = 0; i < plen; i++)
		put(o, prefix[i]);
	if (!s->left && s->zero)
		pad(o, '0', s->width - total);
	for (int i = 0; i < n; i++)
		put(o, d[i]);
	if (s->left)
		pad(o, ' ', s->width - total);
}

static long long fetch_signed(const struct spec *s, va_list *ap)
{
	switch (s->length) {
	case 2:
		return va_arg(*ap, long long);
	case 1:
		return va_arg(*ap, long);
	case -1:
		return (short)va_arg(*ap, int);
	case -2:
		return (signed char)va_arg(*ap, int);
	default:
		return va_arg(*ap, int);
	}
}

static unsigned long long fetch_unsigned(const struct spec *s, va_list *ap)
{
	switch (s->length) {
	case 2:
		return va_arg(*ap, unsigned long long);
	case 1:
		return va_arg(*ap, unsigned long);
	case -1:
		return (unsigned short)va_arg(*ap, unsigned int);
	case -2:
		return (unsigned char)va_arg(*ap, unsigned int);
	default:
		return va_arg(*ap, unsigned int);
	}
}

/* Parses flags, width, precision and length; returns the conversion char. */
static const char *parse_spec(const char *f, struct spec *s, va_list *ap)
{
	s->left = s->zero = s->width = s->length = 0;
	s->prec = -1;
	for (;; f++) {
		if (*f == '-')
			s->left = 1;
		else if (*f == '0')
			s->zero = 1;
		else
			break;
	}
	if (*f == '*') {
		s->width = va_arg(*ap, int);
		if (s->width < 0) {
			s->left = 1;
			s->width = -s->width;
		}
		f++;
	}
	while (*f >= '0' && *f <= '9')
		s->width = s->width * 10 + (*f++ - '0');
	if (*f == '.') {
		s->prec = 0;
		for (f++; *f >= '0' && *f <= '9'; f++)
			s->prec = s->prec * 10 + (*f - '0');
	}
	for (;; f++) {
		if (*f == 'l')
			s->length = s->length >= 1 ? 2 : 1;
		else if (*f == 'z')
			s->length = 1;
		else if (*f == 'h')
			s->length = s->length == -1 ? -2 : -1;
		else
			break;
	}
	if (s->left)
		s->zero = 0;
	return f;
}

static void convert(struct out *o, struct spec *s, char c, va_list *ap)
{
	switch (c) {
	case 'd':
	case 'i': {
		long long v = fetch_signed(s, ap);
		unsigned long long mag = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
		emit_num(o, s, mag, v < 0, 10, 0, "");
		break;
	}
	case 'u':
		emit_num(o, s, fetch_unsigned(s, ap), 0, 10, 0, "");
		break;
	case 'x':
	case 'X':
		emit_num(o, s, fetch_unsigned(s, ap), 0, 16, c == 'X', "");
		break;
	case 'o':
		emit_num(o, s, fetch_unsigned(s, ap), 0, 8, 0, "");
		break;
	case 'p':
		emit_num(o, s, (unsigned long)va_arg(*ap, void *), 0, 16, 0, "0x");
		break;
	case 'c': {
		char ch[2] = { (char)va_arg(*ap, int), 0 };
		s->prec = 1;
		emit_str(o, s, ch);
		break;
	}
	case 's':
		emit_str(o, s, va_arg(*ap, const char *));
		break;
	case '%':
		put(o, '%');
		break;
	default: /* unknown conversion: print it verbatim */
		put(o, '%');
		put(o, c);
		break;
	}
}

int smp_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct out o = { buf, size, 0 };
	va_list aq;
	__builtin_va_copy(aq, ap);
	for (const char *f = fmt; *f; f++) {
		if (*f != '%') {
			put(&o, *f);
			continue;
		}
		struct spec s;
		f = parse_spec(f + 1, &s, &aq);
		if (!*f)
			break;
		convert(&o, &s, *f, &aq);
	}
	va_end(aq);
	if (size)
		buf[o.len < size ? o.len : size - 1] = 0;
	return (int)o.len;
}

int smp_snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = smp_vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}
