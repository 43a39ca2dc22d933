"""The offline narrator of campaign performance: every sentence comes from the figures, and a
lift is claimed only with a holdout big enough to measure one."""

from typing import Any

from minicrm.insights.campaign_narrator import MIN_HOLDOUT, campaign_narrate


def figures(**revenue: Any) -> dict[str, Any]:
    base_revenue = {
        "recipients": 900,
        "recipient_buyers": 90,
        "recipient_buyer_rate": 0.1,
        "recipient_revenue": 11250.0,
        "revenue_per_recipient": 12.5,
        "held_out": 100,
        "holdout_buyers": 8,
        "holdout_buyer_rate": 0.08,
        "holdout_revenue": 1000.0,
        "revenue_per_held_out": 10.0,
        "lift": 0.25,
        "incremental_revenue": 2250.0,
    }
    return {
        "currency": "INR",
        "channel": "webhook",
        "status": "sent",
        "holdout_percent": 10,
        "window_days": 14,
        "window_closed": True,
        "audience": 1000,
        "excluded": {"unsubscribed": 100, "no_consent": 200, "no_email": 0},
        "deliveries": {
            "held_out": 100,
            "pending": 0,
            "sent": 100,
            "delivered": 720,
            "failed": 80,
            "skipped": 0,
        },
        "rates": {"delivery_rate": 0.8, "failure_rate": 0.0889, "skip_rate": 0.0},
        "revenue": base_revenue | revenue,
    }


def test_a_measured_lift_leads_and_a_working_message_is_sent_again() -> None:
    content = campaign_narrate(figures())

    assert content.headline == (
        "Recipients spent ₹12.50 each against ₹10.00 for the holdout: a lift of +25%"
    )
    assert content.findings == [
        "1,000 customers were in the audience; 820 received the message, 80 failed and 0 were"
        " skipped (unsubscribed or cancelled before their batch).",
        "80% of the messages sent were confirmed delivered and 8.9% failed.",
        "10% of recipients bought within 14 days, for ₹11,250 (₹12.50 per recipient).",
        "The 100 held-out customers spent ₹1,000 (₹10.00 each; 8% bought).",
        "Against the holdout, the message brought about ₹2,250 of extra revenue.",
        "23.1% of the segment could not be reached: 100 had unsubscribed, 200 had not given"
        " marketing consent.",
    ]
    assert content.recommendations == [
        "The message works: send it to similar segments, and test a variant against it.",
        "Many messages failed: check the addresses and the vendor's reasons in the delivery log.",
        "Ask the customers without marketing consent for it at their next order or sign-in.",
    ]


def test_a_negative_lift_says_the_message_did_not_beat_the_holdout() -> None:
    content = campaign_narrate(figures(lift=-0.1, revenue_per_recipient=9.0))

    assert content.headline.endswith("a lift of -10%")
    assert content.recommendations[0].startswith("The message did not beat the holdout")


def test_a_small_holdout_claims_no_lift() -> None:
    content = campaign_narrate(figures(held_out=MIN_HOLDOUT - 1))

    assert content.headline == "90 of 900 recipients bought within 14 days, spending ₹11,250"
    assert not any("extra revenue" in finding for finding in content.findings)
    assert content.recommendations[0].startswith("Hold out more customers next time")


def test_nobody_reached_yet_is_said_plainly() -> None:
    content = campaign_narrate(figures(recipients=0, recipient_buyers=0, lift=None))

    assert content.headline == "No message has reached anyone yet, so there is nothing to measure."
