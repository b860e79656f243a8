/* index.c: the in-memory index (blob id -> pack, offset, length) and a set of ids, both open
 * addressing tables keyed by the first 8 bytes of the id (ids are keyed hashes, so those bytes
 * are uniformly spread). The index keeps the first entry seen for an id: any copy is as good
 * as another. Owned by one struct backup_repo; not thread-safe.
 */
#include <stdlib.h>
#include <string.h>

#include "backup/backup_internal.h"

#define EMPTY UINT32_MAX

static uint64_t id_hash(const uint8_t *id) {
	uint64_t h;
	memcpy(&h, id, sizeof(h));
	return h;
}

void bindex_init(struct bindex *x) {
	memset(x, 0, sizeof(*x));
}

void bindex_free(struct bindex *x) {
	free(x->slots);
	free(x->packs);
	memset(x, 0, sizeof(*x));
}

uint32_t bindex_pack(struct bindex *x, const uint8_t id[BACKUP_ID_LEN]) {
	/* Packs are few (one per 16 MiB): a linear search from the end finds the pack being
	 * added in one step, which is the common case. */
	for (size_t i = x->npacks; i > 0; i--)
		if (memcmp(x->packs[i - 1], id, BACKUP_ID_LEN) == 0)
			return (uint32_t)(i - 1);
	if (x->npacks == x->packs_cap) {
		x->packs_cap = x->packs_cap ? x->packs_cap * 2 : 64;
		x->packs = ward_xrealloc(x->packs, x->packs_cap * BACKUP_ID_LEN);
	}
	memcpy(x->packs[x->npacks], id, BACKUP_ID_LEN);
	return (uint32_t)x->npacks++;
}

static void grow(struct bindex *x) {
	struct bindex_ent *old = x->slots;
	size_t oldcap = x->cap;

	x->cap = x->cap ? x->cap * 2 : 1024;
	x->slots = ward_xcalloc(x->cap, sizeof(*x->slots));
	for (size_t i = 0; i < x->cap; i++)
		x->slots[i].pack = EMPTY;
	for (size_t i = 0; i < oldcap; i++) {
		size_t j;
		if (old[i].pack == EMPTY)
			continue;
		j = id_hash(old[i].id) & (x->cap - 1);
		while (x->slots[j].pack != EMPTY)
			j = (j + 1) & (x->cap - 1);
		x->slots[j] = old[i];
	}
	free(old);
}

void bindex_add(struct bindex *x, uint32_t pack, const struct backup_pack_entry *e) {
	size_t j;

	if ((x->n + 1) * 4 >= x->cap * 3)
		grow(x);
	j = id_hash(e->id) & (x->cap - 1);
	while (x->slots[j].pack != EMPTY) {
		if (memcmp(x->slots[j].id, e->id, BACKUP_ID_LEN) == 0)
			return;
		j = (j + 1) & (x->cap - 1);
	}
	memcpy(x->slots[j].id, e->id, BACKUP_ID_LEN);
	x->slots[j].pack = pack;
	x->slots[j].type = e->type;
	x->slots[j].flags = e->flags;
	x->slots[j].offset = e->offset;
	x->slots[j].length = e->length;
	x->slots[j].raw_len = e->raw_len;
	x->n++;
}

const struct bindex_ent *bindex_get(const struct bindex *x, const uint8_t id[BACKUP_ID_LEN]) {
	size_t j;
	if (!x->cap)
		return NULL;
	j = id_hash(id) & (x->cap - 1);
	while (x->slots[j].pack != EMPTY) {
		if (memcmp(x->slots[j].id, id, BACKUP_ID_LEN) == 0)
			return &x->slots[j];
		j = (j + 1) & (x->cap - 1);
	}
	return NULL;
}

void idset_init(struct idset *s) {
	memset(s, 0, sizeof(*s));
}

void idset_free(struct idset *s) {
	free(s->v);
	free(s->used);
	memset(s, 0, sizeof(*s));
}

static void idset_grow(struct idset *s) {
	uint8_t(*ov)[BACKUP_ID_LEN] = s->v;
	uint8_t *ou = s->used;
	size_t oc = s->cap;

	s->cap = s->cap ? s->cap * 2 : 1024;
	s->v = ward_xcalloc(s->cap, BACKUP_ID_LEN);
	s->used = ward_xcalloc(s->cap, 1);
	for (size_t i = 0; i < oc; i++) {
		size_t j;
		if (!ou[i])
			continue;
		j = id_hash(ov[i]) & (s->cap - 1);
		while (s->used[j])
			j = (j + 1) & (s->cap - 1);
		memcpy(s->v[j], ov[i], BACKUP_ID_LEN);
		s->used[j] = 1;
	}
	free(ov);
	free(ou);
}

bool idset_add(struct idset *s, const uint8_t id[BACKUP_ID_LEN]) {
	size_t j;
	if ((s->n + 1) * 4 >= s->cap * 3)
		idset_grow(s);
	j = id_hash(id) & (s->cap - 1);
	while (s->used[j]) {
		if (memcmp(s->v[j], id, BACKUP_ID_LEN) == 0)
			return false;
		j = (j + 1) & (s->cap - 1);
	}
	memcpy(s->v[j], id, BACKUP_ID_LEN);
	s->used[j] = 1;
	s->n++;
	return true;
}

bool idset_has(const struct idset *s, const uint8_t id[BACKUP_ID_LEN]) {
	size_t j;
	if (!s->cap)
		return false;
	j = id_hash(id) & (s->cap - 1);
	while (s->used[j]) {
		if (memcmp(s->v[j], id, BACKUP_ID_LEN) == 0)
			return true;
		j = (j + 1) & (s->cap - 1);
	}
	return false;
}
