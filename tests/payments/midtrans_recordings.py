"""Midtrans Core API answers as recorded from its sandbox, trimmed to the fields we read,
with ids replaced. Each is (HTTP status, JSON body). ``{order_id}`` and ``{amount}`` are
filled in per test."""

from __future__ import annotations

QRIS_CHARGE_CREATED = (200, {
    "status_code": "201",
    "status_message": "QRIS transaction is created",
    "transaction_id": "a1c2e3f4-0b1d-4c6e-9f00-5d4c3b2a1908",
    "order_id": "{order_id}",
    "merchant_id": "G123456789",
    "gross_amount": "{amount}",
    "currency": "IDR",
    "payment_type": "qris",
    "transaction_time": "2026-11-22 23:40:00",
    "transaction_status": "pending",
    "fraud_status": "accept",
    "actions": [{
        "name": "generate-qr-code",
        "method": "GET",
        "url": "https://api.sandbox.midtrans.com/v2/qris/a1c2e3f4-0b1d-4c6e-9f00-5d4c3b2a1908/qr-code",
    }],
    "qr_string": (
        "00020101021226620014COM.GO-JEK.WWW0118936009143123456789"
        "05204581253033605802ID5909Test Shop6007Jakarta6304ABCD"
    ),
    "acquirer": "gopay",
    "expiry_time": "2026-11-22 23:55:00",
})

GOPAY_CHARGE_CREATED = (200, {
    "status_code": "201",
    "status_message": "GoPay transaction is created",
    "transaction_id": "b7e8d9c0-1a2b-4c3d-8e9f-0a1b2c3d4e5f",
    "order_id": "{order_id}",
    "gross_amount": "{amount}",
    "currency": "IDR",
    "payment_type": "gopay",
    "transaction_time": "2026-11-22 23:40:00",
    "transaction_status": "pending",
    "fraud_status": "accept",
    "actions": [
        {"name": "generate-qr-code", "method": "GET",
         "url": "https://api.sandbox.midtrans.com/v2/gopay/b7e8d9c0/qr-code"},
        {"name": "deeplink-redirect", "method": "GET",
         "url": "https://simulator.sandbox.midtrans.com/gopay/partner/app/payment-pin?id=b7e8d9c0"},
        {"name": "get-status", "method": "GET",
         "url": "https://api.sandbox.midtrans.com/v2/b7e8d9c0/status"},
        {"name": "cancel", "method": "POST",
         "url": "https://api.sandbox.midtrans.com/v2/b7e8d9c0/cancel"},
    ],
})

CHARGE_DUPLICATE_ORDER_ID = (200, {
    "status_code": "406",
    "status_message": "The request could not be completed due to a conflict with the current "
                      "state of the target resource, please try again",
    "id": "2f0e1d3c-aaaa-bbbb-cccc-000000000000",
})

UNAUTHORIZED = (401, {
    "status_code": "401",
    "status_message": "Unknown Merchant server_key/id",
    "id": "3e1f2a4b-aaaa-bbbb-cccc-000000000000",
})

STATUS_SETTLEMENT = (200, {
    "status_code": "200",
    "status_message": "Success, transaction is found",
    "transaction_id": "a1c2e3f4-0b1d-4c6e-9f00-5d4c3b2a1908",
    "order_id": "{order_id}",
    "gross_amount": "{amount}",
    "currency": "IDR",
    "payment_type": "qris",
    "transaction_time": "2026-11-22 23:40:00",
    "transaction_status": "settlement",
    "settlement_time": "2026-11-22 23:41:12",
    "fraud_status": "accept",
    "acquirer": "gopay",
    "signature_key": "ignored-by-the-status-check",
})

STATUS_PENDING = (200, {
    **STATUS_SETTLEMENT[1],
    "status_code": "201",
    "status_message": "Success, transaction is found",
    "transaction_status": "pending",
})

STATUS_EXPIRE = (200, {
    **STATUS_SETTLEMENT[1],
    "status_code": "407",
    "status_message": "Success, transaction is found",
    "transaction_status": "expire",
})

STATUS_NOT_FOUND = (404, {
    "status_code": "404",
    "status_message": "Transaction doesn't exist.",
    "id": "4a2b3c4d-aaaa-bbbb-cccc-000000000000",
})

CANCEL_OK = (200, {
    "status_code": "200",
    "status_message": "Success, transaction is canceled",
    "transaction_id": "a1c2e3f4-0b1d-4c6e-9f00-5d4c3b2a1908",
    "order_id": "{order_id}",
    "gross_amount": "{amount}",
    "payment_type": "qris",
    "transaction_time": "2026-11-22 23:40:00",
    "transaction_status": "cancel",
})

CANCEL_TOO_LATE = (200, {
    "status_code": "412",
    "status_message": "Merchant cannot modify the status of the transaction",
    "id": "5b3c4d5e-aaaa-bbbb-cccc-000000000000",
})

REFUND_OK = (200, {
    "status_code": "200",
    "status_message": "Success, refund request is approved",
    "transaction_id": "a1c2e3f4-0b1d-4c6e-9f00-5d4c3b2a1908",
    "order_id": "{order_id}",
    "gross_amount": "{amount}",
    "currency": "IDR",
    "payment_type": "qris",
    "transaction_time": "2026-11-22 23:40:00",
    "transaction_status": "partial_refund",
    "refund_chargeback_id": 112233,
    "refund_amount": "{refund}",
    "refund_key": "{refund_key}",
})

REFUND_REFUSED = (200, {
    "status_code": "412",
    "status_message": "Transaction status cannot be updated.",
    "id": "6c4d5e6f-aaaa-bbbb-cccc-000000000000",
})

NOTIFICATION_SETTLEMENT = {
    "transaction_time": "2026-11-22 23:40:00",
    "transaction_status": "settlement",
    "transaction_id": "a1c2e3f4-0b1d-4c6e-9f00-5d4c3b2a1908",
    "status_message": "midtrans payment notification",
    "status_code": "200",
    "settlement_time": "2026-11-22 23:41:12",
    "payment_type": "qris",
    "order_id": "{order_id}",
    "merchant_id": "G123456789",
    "gross_amount": "{amount}",
    "fraud_status": "accept",
    "currency": "IDR",
    "acquirer": "gopay",
}
