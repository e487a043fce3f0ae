/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for common/transport.{h,c}: transport names, resolving a
 * requested transport against the feature bits real kernels report,
 * reading the transport back from device flags, and recovery flags.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "transport.h"
#include "ublk_uapi.h"

/* GET_FEATURES as reported by kernels the project runs on. */
#define FEATURES_SID_7_2 0xfffffULL /* Debian sid, Linux 7.2 */
#define FEATURES_TRIXIE_6_12 0x1feULL /* Debian trixie, Linux 6.12 */
#define FEATURES_OLD 0x0fULL		/* before UBLK_F_USER_COPY */

#define BIT(n) (1ULL << (n))

/* ---- names ------------------------------------------------------------ */

static void test_name_round_trip(void **state)
{
	static const enum transport all[] = { TRANSPORT_AUTO, TRANSPORT_ZERO_COPY,
					      TRANSPORT_USER_COPY, TRANSPORT_COPY };

	(void)state;
	for (unsigned i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		enum transport t = (enum transport)99;

		assert_int_equal(transport_from_name(transport_name(all[i]), &t), 0);
		assert_int_equal(t, all[i]);
	}
	assert_string_equal(transport_name(TRANSPORT_AUTO), "auto");
	assert_string_equal(transport_name(TRANSPORT_ZERO_COPY), "zero-copy");
	assert_string_equal(transport_name(TRANSPORT_USER_COPY), "user-copy");
	assert_string_equal(transport_name(TRANSPORT_COPY), "copy");
}

static void test_from_name_rejects_unknown(void **state)
{
	static const char *const bad[] = { "",	     "zerocopy", "ZERO-COPY", "Copy",
					   "copy ",  " copy",	 "user_copy", "zero-copy\n",
					   "unknown", "autox" };

	(void)state;
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		enum transport t = TRANSPORT_COPY;

		if (transport_from_name(bad[i], &t) != -EINVAL)
			fail_msg("transport_from_name(\"%s\") accepted", bad[i]);
		/* A refused name leaves the output alone. */
		assert_int_equal(t, TRANSPORT_COPY);
	}
}

static void test_name_of_out_of_range_value(void **state)
{
	(void)state;
	assert_string_equal(transport_name((enum transport)4), "unknown");
	assert_string_equal(transport_name((enum transport)-1), "unknown");
}

/* ---- transport_resolve ------------------------------------------------ */

struct resolved {
	int r;
	enum transport t;
	uint64_t flags;
	const char *why;
};

static struct resolved resolve(uint64_t features, enum transport req)
{
	struct resolved res = { .t = (enum transport)99, .flags = 0xdead, .why = NULL };

	res.r = transport_resolve(features, req, &res.t, &res.flags, &res.why);
	return res;
}

static void test_resolve_sid_kernel_auto_is_zero_copy(void **state)
{
	struct resolved res = resolve(FEATURES_SID_7_2, TRANSPORT_AUTO);

	(void)state;
	assert_int_equal(res.r, 0);
	assert_int_equal(res.t, TRANSPORT_ZERO_COPY);
	assert_true(res.flags == (BIT(0) | BIT(11)));
	assert_true(res.flags == (UBLK_F_SUPPORT_ZERO_COPY | UBLK_F_AUTO_BUF_REG));
}

static void test_resolve_sid_kernel_honours_each_forced_transport(void **state)
{
	struct resolved res;

	(void)state;
	res = resolve(FEATURES_SID_7_2, TRANSPORT_ZERO_COPY);
	assert_int_equal(res.r, 0);
	assert_int_equal(res.t, TRANSPORT_ZERO_COPY);
	assert_true(res.flags == (BIT(0) | BIT(11)));

	res = resolve(FEATURES_SID_7_2, TRANSPORT_USER_COPY);
	assert_int_equal(res.r, 0);
	assert_int_equal(res.t, TRANSPORT_USER_COPY);
	assert_true(res.flags == BIT(7));

	res = resolve(FEATURES_SID_7_2, TRANSPORT_COPY);
	assert_int_equal(res.r, 0);
	assert_int_equal(res.t, TRANSPORT_COPY);
	assert_true(res.flags == 0);
}

static void test_resolve_trixie_kernel_auto_is_user_copy(void **state)
{
	struct resolved res = resolve(FEATURES_TRIXIE_6_12, TRANSPORT_AUTO);

	(void)state;
	assert_int_equal(res.r, 0);
	assert_int_equal(res.t, TRANSPORT_USER_COPY);
	assert_true(res.flags == BIT(7));
}

static void test_resolve_trixie_kernel_forced_zero_copy_refused(void **state)
{
	struct resolved res = resolve(FEATURES_TRIXIE_6_12, TRANSPORT_ZERO_COPY);

	(void)state;
	assert_int_equal(res.r, -EOPNOTSUPP);
	assert_non_null(res.why);
	assert_true(strlen(res.why) > 0);
	/* Never a silent fallback: nothing was chosen. */
	assert_int_equal(res.t, 99);
	assert_true(res.flags == 0xdead);
}

static void test_resolve_trixie_kernel_forced_copy_has_no_data_flags(void **state)
{
	struct resolved res = resolve(FEATURES_TRIXIE_6_12, TRANSPORT_COPY);

	(void)state;
	assert_int_equal(res.r, 0);
	assert_int_equal(res.t, TRANSPORT_COPY);
	assert_true(res.flags == 0);
}

static void test_resolve_old_kernel(void **state)
{
	struct resolved res;

	(void)state;
	res = resolve(FEATURES_OLD, TRANSPORT_AUTO);
	assert_int_equal(res.r, 0);
	assert_int_equal(res.t, TRANSPORT_COPY);
	assert_true(res.flags == 0);

	res = resolve(FEATURES_OLD, TRANSPORT_USER_COPY);
	assert_int_equal(res.r, -EOPNOTSUPP);
	assert_non_null(res.why);
	assert_true(strlen(res.why) > 0);
	assert_int_equal(res.t, 99);

	/* Bit 0 alone (old SUPPORT_ZERO_COPY) is not zero-copy without bit 11. */
	res = resolve(FEATURES_OLD, TRANSPORT_ZERO_COPY);
	assert_int_equal(res.r, -EOPNOTSUPP);
	assert_non_null(res.why);
}

static void test_resolve_zero_copy_needs_both_bits(void **state)
{
	struct resolved res;

	(void)state;
	/* AUTO_BUF_REG without SUPPORT_ZERO_COPY: user-copy is the best. */
	res = resolve(BIT(7) | BIT(11), TRANSPORT_AUTO);
	assert_int_equal(res.r, 0);
	assert_int_equal(res.t, TRANSPORT_USER_COPY);
	res = resolve(BIT(11), TRANSPORT_ZERO_COPY);
	assert_int_equal(res.r, -EOPNOTSUPP);
	/* Both bits and nothing else is enough. */
	res = resolve(BIT(0) | BIT(11), TRANSPORT_AUTO);
	assert_int_equal(res.r, 0);
	assert_int_equal(res.t, TRANSPORT_ZERO_COPY);
	/* No features at all still allows copy. */
	res = resolve(0, TRANSPORT_AUTO);
	assert_int_equal(res.r, 0);
	assert_int_equal(res.t, TRANSPORT_COPY);
	assert_true(res.flags == 0);
}

static void test_resolve_unknown_request_is_einval(void **state)
{
	struct resolved res = resolve(FEATURES_SID_7_2, (enum transport)7);

	(void)state;
	assert_int_equal(res.r, -EINVAL);
	assert_non_null(res.why);
	assert_true(strlen(res.why) > 0);
}

/* The flags chosen for a device read back as the transport chosen. */
static void test_resolve_then_from_dev_flags_agree(void **state)
{
	static const uint64_t features[] = { FEATURES_SID_7_2, FEATURES_TRIXIE_6_12,
					     FEATURES_OLD, 0 };
	static const enum transport reqs[] = { TRANSPORT_AUTO, TRANSPORT_ZERO_COPY,
					       TRANSPORT_USER_COPY, TRANSPORT_COPY };

	(void)state;
	for (unsigned i = 0; i < 4; i++)
		for (unsigned j = 0; j < 4; j++) {
			struct resolved res = resolve(features[i], reqs[j]);

			if (res.r < 0)
				continue;
			assert_true(res.t != TRANSPORT_AUTO);
			/* Only offered bits are ever asked for. */
			assert_true((res.flags & ~features[i]) == 0);
			assert_int_equal(transport_from_dev_flags(res.flags), res.t);
		}
}

/* ---- transport_from_dev_flags ----------------------------------------- */

static void test_from_dev_flags(void **state)
{
	(void)state;
	/* Seen on a zero-copy device (recovery and other bits set too). */
	assert_int_equal(transport_from_dev_flags(0x6843), TRANSPORT_ZERO_COPY);
	assert_int_equal(transport_from_dev_flags(0x80 | 0x18), TRANSPORT_USER_COPY);
	assert_int_equal(transport_from_dev_flags(0x18), TRANSPORT_COPY);
	assert_int_equal(transport_from_dev_flags(0), TRANSPORT_COPY);
	assert_int_equal(transport_from_dev_flags(BIT(0)), TRANSPORT_COPY);
	assert_int_equal(transport_from_dev_flags(BIT(11)), TRANSPORT_COPY);
	assert_int_equal(transport_from_dev_flags(BIT(0) | BIT(11)), TRANSPORT_ZERO_COPY);
	/* Zero-copy wins when user-copy is also flagged. */
	assert_int_equal(transport_from_dev_flags(BIT(0) | BIT(7) | BIT(11)),
			 TRANSPORT_ZERO_COPY);
}

/* ---- transport_recovery_flags ----------------------------------------- */

static void test_recovery_flags(void **state)
{
	(void)state;
	assert_true((transport_recovery_flags(FEATURES_TRIXIE_6_12) & (BIT(3) | BIT(4))) ==
		    (BIT(3) | BIT(4)));
	assert_true(transport_recovery_flags(FEATURES_TRIXIE_6_12) == (BIT(3) | BIT(4)));
	assert_true(transport_recovery_flags(0x08) == BIT(3));
	assert_true(transport_recovery_flags(FEATURES_SID_7_2) == (BIT(3) | BIT(4)));
	/* Never anything beyond the two recovery bits (e.g. FAIL_IO, bit 9). */
	assert_true((transport_recovery_flags(~0ULL) & ~(BIT(3) | BIT(4))) == 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_name_round_trip),
		cmocka_unit_test(test_from_name_rejects_unknown),
		cmocka_unit_test(test_name_of_out_of_range_value),
		cmocka_unit_test(test_resolve_sid_kernel_auto_is_zero_copy),
		cmocka_unit_test(test_resolve_sid_kernel_honours_each_forced_transport),
		cmocka_unit_test(test_resolve_trixie_kernel_auto_is_user_copy),
		cmocka_unit_test(test_resolve_trixie_kernel_forced_zero_copy_refused),
		cmocka_unit_test(test_resolve_trixie_kernel_forced_copy_has_no_data_flags),
		cmocka_unit_test(test_resolve_old_kernel),
		cmocka_unit_test(test_resolve_zero_copy_needs_both_bits),
		cmocka_unit_test(test_resolve_unknown_request_is_einval),
		cmocka_unit_test(test_resolve_then_from_dev_flags_agree),
		cmocka_unit_test(test_from_dev_flags),
		cmocka_unit_test(test_recovery_flags),
	};

	return cmocka_run_group_tests_name("transport", tests, NULL, NULL);
}
