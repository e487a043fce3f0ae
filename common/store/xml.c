/* SPDX-License-Identifier: MIT */
#include "xml.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define XML_MAX_DEPTH 16
#define XML_MAX_NAME 64

/*
 * Called when an element closes, with its path from the root
 * ("ListBucketResult/Contents/Key"). For an element without child
 * elements text is its decoded content (NUL-terminated, len bytes);
 * otherwise text is NULL. A negative return stops the walk with it.
 */
typedef int (*xml_close_fn)(void *arg, const char *path, const char *text, size_t len);

struct xml_walk {
	const char *p;
	const char *end;
	char path[XML_MAX_DEPTH * (XML_MAX_NAME + 1) + 1];
	size_t path_len;
	size_t mark[XML_MAX_DEPTH]; /* path_len before each open element's name */
	unsigned depth;
	char *text; /* the innermost element's content; never longer than the document */
	size_t text_len;
	bool leaf; /* the innermost element has no child element so far */
	xml_close_fn fn;
	void *arg;
};

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool name_char(unsigned char c, bool first)
{
	if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' || c == ':' || c >= 0x80)
		return true;
	return !first && ((c >= '0' && c <= '9') || c == '-' || c == '.');
}

static bool starts(const struct xml_walk *w, const char *s)
{
	size_t n = strlen(s);

	return (size_t)(w->end - w->p) >= n && memcmp(w->p, s, n) == 0;
}

/* Move past the next occurrence of s. */
static int skip_past(struct xml_walk *w, const char *s)
{
	const char *hit = memmem(w->p, w->end - w->p, s, strlen(s));

	if (!hit)
		return -EBADMSG;
	w->p = hit + strlen(s);
	return 0;
}

static void skip_space(struct xml_walk *w)
{
	while (w->p < w->end && is_space(*w->p))
		w->p++;
}

static int read_name(struct xml_walk *w, const char **name, size_t *len)
{
	const char *s = w->p;

	while (w->p < w->end && name_char(*w->p, w->p == s))
		w->p++;
	*name = s;
	*len = w->p - s;
	return (*len == 0 || *len > XML_MAX_NAME) ? -EBADMSG : 0;
}

static void put_utf8(struct xml_walk *w, uint32_t cp)
{
	char *o = w->text + w->text_len;

	if (cp < 0x80) {
		o[0] = cp;
		w->text_len += 1;
	} else if (cp < 0x800) {
		o[0] = 0xc0 | cp >> 6;
		o[1] = 0x80 | (cp & 0x3f);
		w->text_len += 2;
	} else if (cp < 0x10000) {
		o[0] = 0xe0 | cp >> 12;
		o[1] = 0x80 | ((cp >> 6) & 0x3f);
		o[2] = 0x80 | (cp & 0x3f);
		w->text_len += 3;
	} else {
		o[0] = 0xf0 | cp >> 18;
		o[1] = 0x80 | ((cp >> 12) & 0x3f);
		o[2] = 0x80 | ((cp >> 6) & 0x3f);
		o[3] = 0x80 | (cp & 0x3f);
		w->text_len += 4;
	}
}

/*
 * w->p is at '&'. A character reference is never shorter than its UTF-8
 * (the shortest, "&#N;", is 4 bytes for 1), so text stays within the
 * document's length.
 */
static int entity(struct xml_walk *w)
{
	static const struct {
		const char *ref;
		char c;
	} named[] = {
		{ "&amp;", '&' }, { "&lt;", '<' }, { "&gt;", '>' }, { "&quot;", '"' }, { "&apos;", '\'' },
	};
	uint32_t cp = 0;
	unsigned base = 10, digits = 0;

	for (size_t i = 0; i < ARRAY_SIZE(named); i++) {
		if (starts(w, named[i].ref)) {
			w->text[w->text_len++] = named[i].c;
			w->p += strlen(named[i].ref);
			return 0;
		}
	}
	if (!starts(w, "&#"))
		return -EBADMSG;
	w->p += 2;
	if (w->p < w->end && *w->p == 'x') {
		base = 16;
		w->p++;
	}
	for (; w->p < w->end && *w->p != ';'; w->p++, digits++) {
		char c = *w->p;
		unsigned d;

		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (base == 16 && c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (base == 16 && c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			return -EBADMSG;
		cp = cp * base + d;
		if (cp > 0x10ffff)
			return -EBADMSG;
	}
	if (w->p == w->end || digits == 0 || cp == 0 || (cp >= 0xd800 && cp <= 0xdfff))
		return -EBADMSG;
	w->p++;
	put_utf8(w, cp);
	return 0;
}

/* Character data up to the next '<' (or the end). */
static int text(struct xml_walk *w)
{
	while (w->p < w->end && *w->p != '<') {
		if (w->depth == 0) {
			if (!is_space(*w->p))
				return -EBADMSG;
			w->p++;
		} else if (*w->p == '&') {
			int r = entity(w);

			if (r < 0)
				return r;
		} else {
			w->text[w->text_len++] = *w->p++;
		}
	}
	return 0;
}

static int cdata(struct xml_walk *w)
{
	const char *start = w->p + strlen("<![CDATA[");
	const char *stop;

	if (w->depth == 0)
		return -EBADMSG;
	w->p = start;
	stop = memmem(start, w->end - start, "]]>", 3);
	if (!stop)
		return -EBADMSG;
	memcpy(w->text + w->text_len, start, stop - start);
	w->text_len += stop - start;
	w->p = stop + 3;
	return 0;
}

/* Attributes are checked for shape and otherwise ignored. */
static int skip_attributes(struct xml_walk *w)
{
	for (;;) {
		const char *name;
		size_t len;
		char quote;
		int r;

		skip_space(w);
		if (w->p == w->end)
			return -EBADMSG;
		if (*w->p == '>' || *w->p == '/')
			return 0;
		r = read_name(w, &name, &len);
		if (r < 0)
			return r;
		skip_space(w);
		if (w->p == w->end || *w->p != '=')
			return -EBADMSG;
		w->p++;
		skip_space(w);
		if (w->p == w->end || (*w->p != '"' && *w->p != '\''))
			return -EBADMSG;
		quote = *w->p++;
		while (w->p < w->end && *w->p != quote && *w->p != '<')
			w->p++;
		if (w->p == w->end || *w->p != quote)
			return -EBADMSG;
		w->p++;
	}
}

static int close_element(struct xml_walk *w)
{
	bool leaf = w->leaf;
	int r;

	w->text[w->text_len] = '\0';
	r = w->fn(w->arg, w->path, leaf ? w->text : NULL, leaf ? w->text_len : 0);
	w->depth--;
	w->path_len = w->mark[w->depth];
	w->path[w->path_len] = '\0';
	w->leaf = false; /* the parent has had this child */
	w->text_len = 0;
	return r;
}

static int start_tag(struct xml_walk *w, const char *root, bool *seen_root)
{
	const char *name;
	size_t len;
	int r;

	w->p++;
	r = read_name(w, &name, &len);
	if (r < 0)
		return r;
	if (w->depth == 0) {
		if (*seen_root)
			return -EBADMSG;
		*seen_root = true;
		if (len != strlen(root) || memcmp(name, root, len) != 0)
			return -ENOMSG;
	}
	if (w->depth == XML_MAX_DEPTH)
		return -EBADMSG;
	w->mark[w->depth++] = w->path_len;
	if (w->depth > 1)
		w->path[w->path_len++] = '/';
	memcpy(w->path + w->path_len, name, len);
	w->path_len += len;
	w->path[w->path_len] = '\0';
	w->leaf = true;
	w->text_len = 0;

	r = skip_attributes(w);
	if (r < 0)
		return r;
	if (*w->p == '/') {
		if (w->end - w->p < 2 || w->p[1] != '>')
			return -EBADMSG;
		w->p += 2;
		return close_element(w);
	}
	w->p++;
	return 0;
}

static int end_tag(struct xml_walk *w)
{
	const char *name;
	size_t len;
	int r;

	w->p += 2;
	r = read_name(w, &name, &len);
	if (r < 0)
		return r;
	if (w->depth == 0)
		return -EBADMSG;
	if (len != w->path_len - w->mark[w->depth - 1] - (w->depth > 1) ||
	    memcmp(name, w->path + w->path_len - len, len) != 0)
		return -EBADMSG;
	skip_space(w);
	if (w->p == w->end || *w->p != '>')
		return -EBADMSG;
	w->p++;
	return close_element(w);
}

/*
 * Walk doc, which must hold exactly one element named root (-ENOMSG when
 * it is named otherwise), calling fn as elements close.
 */
static int xml_walk(const char *doc, size_t len, const char *root, xml_close_fn fn, void *arg)
{
	_cleanup_free_ char *buf = malloc(len + 1);
	struct xml_walk w = { .p = doc, .end = doc + len, .text = buf, .fn = fn, .arg = arg };
	bool seen_root = false;
	int r = 0;

	if (!buf)
		return -ENOMEM;
	/* No body at all may come as NULL. */
	if (len == 0)
		return -EBADMSG;
	/* A NUL could only cut a key short. */
	if (memchr(doc, '\0', len))
		return -EBADMSG;
	if (starts(&w, "\xef\xbb\xbf"))
		w.p += 3;
	while (r == 0 && w.p < w.end) {
		if (*w.p != '<')
			r = text(&w);
		else if (starts(&w, "<?"))
			r = skip_past(&w, "?>");
		else if (starts(&w, "<!--"))
			r = skip_past(&w, "-->");
		else if (starts(&w, "<![CDATA["))
			r = cdata(&w);
		else if (starts(&w, "</"))
			r = end_tag(&w);
		else if (starts(&w, "<!") || (seen_root && w.depth == 0))
			r = -EBADMSG; /* DTDs and their entities (not from S3), a second root */
		else
			r = start_tag(&w, root, &seen_root);
	}
	if (r == 0 && (!seen_root || w.depth != 0))
		r = -EBADMSG;
	return r;
}

static int parse_u64(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;

	if (len == 0 || len > 20)
		return -EBADMSG;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9' || v > (UINT64_MAX - (s[i] - '0')) / 10)
			return -EBADMSG;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

/* ---- ListObjectsV2 ----------------------------------------------------- */

struct list_state {
	struct s3_list_page *page;
	size_t cap;
	char *key; /* of the Contents being read */
	uint64_t size;
	bool have_size;
	bool have_key_count;
	uint64_t key_count;
	bool have_truncated;
};

static int list_close(void *arg, const char *path, const char *text, size_t len)
{
	struct list_state *s = arg;
	struct s3_list_page *page = s->page;

	if (strcmp(path, "ListBucketResult/Contents/Key") == 0) {
		if (!text || s->key || len == 0)
			return -EBADMSG;
		s->key = strndup(text, len);
		return s->key ? 0 : -ENOMEM;
	}
	if (strcmp(path, "ListBucketResult/Contents/Size") == 0) {
		if (!text || s->have_size)
			return -EBADMSG;
		s->have_size = true;
		return parse_u64(text, len, &s->size);
	}
	if (strcmp(path, "ListBucketResult/Contents") == 0) {
		if (!s->key || !s->have_size)
			return -EBADMSG;
		if (page->nobjects == s->cap) {
			size_t cap = s->cap ? 2 * s->cap : 64;
			struct store_object *o = reallocarray(page->objects, cap, sizeof(*o));

			if (!o)
				return -ENOMEM;
			page->objects = o;
			s->cap = cap;
		}
		page->objects[page->nobjects++] =
			(struct store_object){ .key = TAKE_PTR(s->key), .size = s->size };
		s->have_size = false;
		return 0;
	}
	if (strcmp(path, "ListBucketResult/IsTruncated") == 0) {
		if (!text || s->have_truncated)
			return -EBADMSG;
		s->have_truncated = true;
		if (strcmp(text, "true") == 0)
			page->truncated = true;
		else if (strcmp(text, "false") != 0)
			return -EBADMSG;
		return 0;
	}
	if (strcmp(path, "ListBucketResult/NextContinuationToken") == 0) {
		if (!text || page->next_token)
			return -EBADMSG;
		page->next_token = strndup(text, len);
		return page->next_token ? 0 : -ENOMEM;
	}
	if (strcmp(path, "ListBucketResult/KeyCount") == 0) {
		if (!text || s->have_key_count)
			return -EBADMSG;
		s->have_key_count = true;
		return parse_u64(text, len, &s->key_count);
	}
	return 0;
}

void s3_list_page_free(struct s3_list_page *page)
{
	for (size_t i = 0; i < page->nobjects; i++)
		free(page->objects[i].key);
	free(page->objects);
	free(page->next_token);
	memset(page, 0, sizeof(*page));
}

int s3_xml_list(const char *doc, size_t len, struct s3_list_page *page)
{
	struct list_state s = { .page = page };
	int r;

	memset(page, 0, sizeof(*page));
	r = xml_walk(doc, len, "ListBucketResult", list_close, &s);
	free(s.key);
	if (r == -ENOMSG)
		r = -EBADMSG;
	if (r == 0 && page->truncated && (!page->next_token || !page->next_token[0]))
		r = -EBADMSG;
	if (r == 0 && s.have_key_count && s.key_count != page->nobjects)
		r = -EBADMSG;
	if (r < 0)
		s3_list_page_free(page);
	return r;
}

/* ---- Error documents --------------------------------------------------- */

static void copy_cut(char *dst, size_t size, const char *text, size_t len)
{
	if (len >= size)
		len = size - 1;
	memcpy(dst, text, len);
	dst[len] = '\0';
}

static int error_close(void *arg, const char *path, const char *text, size_t len)
{
	struct s3_error *err = arg;

	if (text && strcmp(path, "Error/Code") == 0)
		copy_cut(err->code, sizeof(err->code), text, len);
	else if (text && strcmp(path, "Error/Message") == 0)
		copy_cut(err->message, sizeof(err->message), text, len);
	return 0;
}

int s3_xml_error(const char *doc, size_t len, struct s3_error *err)
{
	memset(err, 0, sizeof(*err));
	return xml_walk(doc, len, "Error", error_close, err);
}

/* ---- InitiateMultipartUploadResult ------------------------------------- */

static int upload_close(void *arg, const char *path, const char *text, size_t len)
{
	char **id = arg;

	if (strcmp(path, "InitiateMultipartUploadResult/UploadId") != 0)
		return 0;
	if (!text || len == 0 || *id)
		return -EBADMSG;
	*id = strndup(text, len);
	return *id ? 0 : -ENOMEM;
}

int s3_xml_upload_id(const char *doc, size_t len, char **upload_id)
{
	char *id = NULL;
	int r = xml_walk(doc, len, "InitiateMultipartUploadResult", upload_close, &id);

	if (r == 0 && !id)
		r = -EBADMSG;
	if (r < 0) {
		free(id);
		return r == -ENOMSG ? -EBADMSG : r;
	}
	*upload_id = id;
	return 0;
}
