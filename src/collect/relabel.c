/* relabel.c: Prometheus' relabeling (model/relabel/relabel.go) over struct labels: the
 * actions replace, keep, drop, hashmod, labelmap, labeldrop, labelkeep, lowercase,
 * uppercase, keepequal, dropequal with the same defaults (separator ";", regex "(.*)",
 * replacement "$1") and the same rules: regexes fully anchored with (?s), replace skips
 * when the regex does not match or the expanded target is not a valid label name, an
 * empty result deletes the target label, hashmod uses the low 64 bits of the MD5 of the
 * joined values. Expansion follows Go's Regexp.Expand ($1, ${1}, $name, ${name}, $$).
 * Compiled once per config; relabel_apply is reentrant (match data per call).
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <ctype.h>
#include <openssl/evp.h>
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "collect/collect_internal.h"

struct rule {
	const struct relabel_conf *c; /* borrowed from the config */
	pcre2_code *re;
};
struct relabel {
	struct rule *r;
	size_t n;
};

void relabel_free(struct relabel *r) {
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++)
		pcre2_code_free(r->r[i].re);
	free(r->r);
	free(r);
}


struct relabel *relabel_new(const struct relabel_conf *rc, size_t n, struct ward_err *err) {
	struct relabel *r = ward_xcalloc(1, sizeof(*r));
	r->r = ward_xcalloc(n ? n : 1, sizeof(*r->r));
	for (size_t i = 0; i < n; i++) {
		const struct relabel_conf *c = &rc[i];
		const char *rx = c->regex ? c->regex : "(.*)";
		struct buf pat = BUF_INIT;
		buf_printf(&pat, "(?s:%s)", rx);
		int ec;
		PCRE2_SIZE off;
		r->r[i].c = c;
		r->r[i].re = pcre2_compile((PCRE2_SPTR)pat.data, pat.len,
		                           PCRE2_ANCHORED | PCRE2_ENDANCHORED | PCRE2_UTF, &ec,
		                           &off, NULL);
		buf_free(&pat);
		r->n = i + 1;
		if (!r->r[i].re) {
			PCRE2_UCHAR msg[256];
			pcre2_get_error_message(ec, msg, sizeof(msg));
			ward_err_set(err, "relabel rule %zu: regex \"%s\": %s at offset %zu", i + 1,
			             rx, (const char *)msg, (size_t)off);
			goto fail;
		}
		switch (c->action) {
		case RELABEL_REPLACE:
		case RELABEL_LOWERCASE:
		case RELABEL_UPPERCASE:
		case RELABEL_HASHMOD:
		case RELABEL_KEEPEQUAL:
		case RELABEL_DROPEQUAL:
			if (!c->target_label || !*c->target_label) {
				ward_err_set(err, "relabel rule %zu: action %s needs target_label",
				             i + 1, relabel_action_names[c->action]);
				goto fail;
			}
			break;
		default:
			break;
		}
		if (c->action == RELABEL_HASHMOD && c->modulus <= 0) {
			ward_err_set(err, "relabel rule %zu: hashmod needs a modulus above 0",
			             i + 1);
			goto fail;
		}
		if ((c->action == RELABEL_LOWERCASE || c->action == RELABEL_UPPERCASE ||
		     c->action == RELABEL_HASHMOD) &&
		    !labels_valid_name(c->target_label)) {
			ward_err_set(err,
			             "relabel rule %zu: target_label \"%s\" is not a valid label "
			             "name",
			             i + 1, c->target_label);
			goto fail;
		}
	}
	return r;
fail:
	relabel_free(r);
	return NULL;
}

/* Go's Regexp.Expand of tmpl with the match in md over subject. */
static void expand(struct buf *out, const pcre2_code *re, pcre2_match_data *md, const char *subj,
                   const char *tmpl) {
	PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
	uint32_t ngroups = pcre2_get_ovector_count(md);
	for (const char *p = tmpl; *p;) {
		if (*p != '$') {
			buf_putc(out, *p++);
			continue;
		}
		p++;
		if (*p == '$') {
			buf_putc(out, '$');
			p++;
			continue;
		}
		const char *name;
		size_t nl;
		bool braced = false;
		if (*p == '{') {
			const char *end = strchr(p + 1, '}');
			if (!end) {
				buf_putc(out, '$');
				continue;
			}
			name = p + 1;
			nl = (size_t)(end - name);
			braced = true;
		} else {
			name = p;
			nl = 0;
			while (isalnum((unsigned char)name[nl]) || name[nl] == '_')
				nl++;
		}
		if (nl == 0) {
			buf_putc(out, '$');
			continue;
		}
		bool valid = true;
		for (size_t i = 0; i < nl; i++)
			valid = valid && (isalnum((unsigned char)name[i]) || name[i] == '_');
		if (!valid) {
			buf_putc(out, '$');
			continue;
		}
		p = name + nl + (braced ? 1 : 0);
		long group = -1;
		bool digits = true;
		for (size_t i = 0; i < nl; i++)
			digits = digits && isdigit((unsigned char)name[i]);
		if (digits) {
			group = nl < 9 ? strtol(name, NULL, 10) : -1;
		} else {
			char nm[128];
			if (nl < sizeof(nm)) {
				memcpy(nm, name, nl);
				nm[nl] = 0;
				int g = pcre2_substring_number_from_name(re, (PCRE2_SPTR)nm);
				group = g > 0 ? g : -1;
			}
		}
		if (group >= 0 && (uint32_t)group < ngroups && ov[2 * group] != PCRE2_UNSET)
			buf_append(out, subj + ov[2 * group], ov[2 * group + 1] - ov[2 * group]);
	}
}

static bool full_match(const pcre2_code *re, pcre2_match_data *md, const char *s) {
	return pcre2_match(re, (PCRE2_SPTR)s, strlen(s), 0, 0, md, NULL) >= 0;
}

static uint64_t md5_low64(const char *s) {
	unsigned char h[EVP_MAX_MD_SIZE];
	unsigned int hl = 0;
	EVP_Digest(s, strlen(s), h, &hl, EVP_md5(), NULL);
	uint64_t v = 0;
	for (int i = 8; i < 16; i++)
		v = (v << 8) | h[i];
	return v;
}

static bool apply_one(const struct rule *r, struct labels *ls, pcre2_match_data *md,
                      struct buf *val, struct buf *tmp, struct buf *tmp2) {
	const struct relabel_conf *c = r->c;
	const char *sep = c->separator ? c->separator : ";";
	const char *repl = c->replacement ? c->replacement : "$1";
	buf_reset(val);
	for (size_t i = 0; i < c->nsource_labels; i++) {
		if (i)
			buf_puts(val, sep);
		const char *v = labels_get(ls, c->source_labels[i]);
		buf_puts(val, v ? v : "");
	}
	const char *s = buf_cstr(val);
	switch (c->action) {
	case RELABEL_DROP:
		return !full_match(r->re, md, s);
	case RELABEL_KEEP:
		return full_match(r->re, md, s);
	case RELABEL_DROPEQUAL: {
		const char *t = labels_get(ls, c->target_label);
		return strcmp(s, t ? t : "") != 0;
	}
	case RELABEL_KEEPEQUAL: {
		const char *t = labels_get(ls, c->target_label);
		return strcmp(s, t ? t : "") == 0;
	}
	case RELABEL_REPLACE: {
		if (!full_match(r->re, md, s))
			return true;
		buf_reset(tmp);
		expand(tmp, r->re, md, s, c->target_label);
		if (!labels_valid_name(buf_cstr(tmp)))
			return true;
		buf_reset(tmp2);
		expand(tmp2, r->re, md, s, repl);
		if (tmp2->len == 0)
			labels_del(ls, buf_cstr(tmp));
		else
			labels_set(ls, buf_cstr(tmp), buf_cstr(tmp2));
		return true;
	}
	case RELABEL_LOWERCASE:
	case RELABEL_UPPERCASE: {
		buf_reset(tmp);
		for (const char *p = s; *p; p++)
			buf_putc(tmp, (char)(c->action == RELABEL_LOWERCASE
			                             ? tolower((unsigned char)*p)
			                             : toupper((unsigned char)*p)));
		labels_set(ls, c->target_label, buf_cstr(tmp));
		return true;
	}
	case RELABEL_HASHMOD: {
		char num[32];
		snprintf(num, sizeof(num), "%llu",
		         (unsigned long long)(md5_low64(s) % (uint64_t)c->modulus));
		labels_set(ls, c->target_label, num);
		return true;
	}
	case RELABEL_LABELMAP: {
		struct labels add;
		labels_init(&add);
		for (size_t i = 0; i < ls->n; i++) {
			const char *name = ls->v[i].name;
			if (!full_match(r->re, md, name))
				continue;
			buf_reset(tmp);
			expand(tmp, r->re, md, name, repl);
			labels_set(&add, buf_cstr(tmp), ls->v[i].value);
		}
		for (size_t i = 0; i < add.n; i++)
			labels_set(ls, add.v[i].name, add.v[i].value);
		labels_free(&add);
		return true;
	}
	case RELABEL_LABELDROP:
	case RELABEL_LABELKEEP: {
		bool keep_matching = c->action == RELABEL_LABELKEEP;
		for (size_t i = 0; i < ls->n;) {
			if (full_match(r->re, md, ls->v[i].name) != keep_matching) {
				char *name = ward_strdup(ls->v[i].name);
				labels_del(ls, name);
				free(name);
			} else
				i++;
		}
		return true;
	}
	}
	return true;
}

bool relabel_apply(const struct relabel *r, struct labels *ls) {
	if (!r || r->n == 0)
		return true;
	pcre2_match_data *md = pcre2_match_data_create(32, NULL);
	struct buf val = BUF_INIT, tmp = BUF_INIT, tmp2 = BUF_INIT;
	bool keep = true;
	for (size_t i = 0; i < r->n && keep; i++)
		keep = apply_one(&r->r[i], ls, md, &val, &tmp, &tmp2);
	buf_free(&val);
	buf_free(&tmp);
	buf_free(&tmp2);
	pcre2_match_data_free(md);
	return keep;
}
