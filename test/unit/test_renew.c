/* When a node renews its certificate (node/renew.h): after most of its lifetime, before its
 * end, with a per-node jitter that spreads a cluster's renewals, the same for a node every
 * time it asks. */
#include "unit.h"
#include "node/renew.h"
#include "pki/pki.h"

UNIT(renew_due_after_two_thirds_less_jitter)
{
	const int64_t issued = 1800000000, nb = issued - PKI_BACKDATE_S;
	const int64_t days90 = 90 * 86400, na = issued + days90;
	int64_t lo = na, hi = 0;
	int distinct = 0;
	int64_t prev = -1;
	for (uint64_t id = 1; id < 2000; id += 7) {
		uint64_t node = id * 0x2545f4914f6cdd1dull;
		int64_t due = renew_due(nb, na, node);
		CHECK(due == renew_due(nb, na, node)); /* no clock, no state: the same answer */
		/* between 2/3 of the lifetime less a tenth, and 2/3 */
		CHECK(due <= issued + days90 * 2 / 3);
		CHECK(due > issued + days90 * 2 / 3 - days90 / 10);
		if (due < lo)
			lo = due;
		if (due > hi)
			hi = due;
		distinct += due != prev;
		prev = due;
	}
	/* spread: the cluster does not renew in one second */
	CHECK(hi - lo > days90 / 20);
	CHECK(distinct > 200);
	/* the shortest validity allowed (60 s): due at 34 to 40 s, with time to ask the leader */
	int64_t d = renew_due(issued - PKI_BACKDATE_S, issued + 60, 0x1234);
	CHECK(d >= issued + 34 && d <= issued + 40);
	/* a certificate not backdated (a CA given from outside) still falls within its life */
	d = renew_due(issued, issued + 3600, 99);
	CHECK(d > issued && d < issued + 3600);
	/* nonsense validity: due at once */
	CHECK(renew_due(issued, issued, 5) <= issued);
}
