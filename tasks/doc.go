// Package tasks is the wire contract between producers and the wxnotify
// worker: the asynq task type, its JSON payload, the payload's
// validation, and a Producer that enqueues into Redis. Producers import
// this package only; it knows nothing of WeChat's HTTP API.
//
// # Schema
//
// A send_template task carries one JSON object. The fields WeChat
// receives keep WeChat's names (touser, template_id, url, miniprogram,
// data, client_msg_id); id, appid, priority and enqueued_at belong to
// wxnotify and are not sent. A payment-due reminder:
//
//	{
//	  "id": "invoice-2024-0042-due",
//	  "appid": "wx8f3a1c2b4d5e6f70",
//	  "touser": "oVq2b5Kx9mTz1YpLw3Hc8dRf4EaG",
//	  "template_id": "Zc1x9QvB3nTm7LpA5sWd2hYe8kRf6GjU4oNi0bXyMqT",
//	  "url": "https://pay.example.com/invoices/42?from=wechat&step=pay",
//	  "data": {
//	    "thing1": {"value": "2024年4月物业费"},
//	    "amount2": {"value": "¥1,280.00"},
//	    "time3": {"value": "2024年4月30日 23:59"},
//	    "character_string4": {"value": "INV-2024-0042"}
//	  },
//	  "client_msg_id": "invoice-2024-0042-due",
//	  "priority": "default"
//	}
//
// Each data key is a placeholder of the template ({{thing1.DATA}} is
// key thing1), and its letters name a type whose value rules WeChat
// enforces for category templates; see Rules.Validate.
//
// # Producing
//
// Build a Producer once and call Enqueue per message. Payloads that come
// from outside the process should go through ParsePayload first, which
// is strict about field names and types; Enqueue then validates.
//
//	prod := tasks.NewProducer(asynq.RedisClientOpt{Addr: "redis:6379"},
//		tasks.ProducerOptions{Rules: tasks.Rules{AppIDs: appids}})
//	defer prod.Close()
//	info, err := prod.Enqueue(ctx, payload)
//
// # Guarantees
//
//   - Nothing that fails validation reaches Redis. Errors name every bad
//     field by its JSON path and never quote data values.
//   - A payload with an id is enqueued at most once per queue while its
//     task exists: pending, scheduled, retrying, archived, or completed
//     within the retention (24 hours by default). A second Enqueue gets
//     ErrDuplicate. The queue is chosen by priority, so the same id with
//     two priorities makes two tasks.
//   - Delivery is at least once. A worker that dies mid-send, or is
//     stopped while a send is in flight, leaves the task to be run
//     again; set client_msg_id so WeChat drops a repeat within its 10
//     minute window.
//   - There is no ordering between tasks, even within one priority.
//   - enqueued_at is set when the task is built unless the producer set
//     it; the worker measures a task's maximum age from it.
//
// The worker decodes with DecodePayload, which ignores unknown fields,
// so fields can be added on the producer side first.
package tasks
