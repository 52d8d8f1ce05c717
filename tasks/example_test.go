package tasks_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/hibiken/asynq"

	"github.com/wxnotify/wxnotify/tasks"
)

// A producer that takes payloads from outside parses them strictly and
// hands every problem back at once.
func ExampleParsePayload() {
	body := []byte(`{"touser": "oVq2b5Kx9mTz1YpLw3Hc8dRf4EaG", "temlate_id": "Zc1x9Qv",
		"data": {"thing1": "三月物业费"}}`)

	_, err := tasks.ParsePayload(body)

	var ve *tasks.ValidationError
	if errors.As(err, &ve) {
		for _, fe := range ve.Errors {
			fmt.Println(fe.Field, "-", fe.Problem)
		}
	}
	// Output:
	// temlate_id - unknown field
	// data.thing1 - must be an object, not a string
}

func ExampleRules_Validate() {
	p := &tasks.Payload{
		ToUser:     "oVq2b5Kx9mTz1YpLw3Hc8dRf4EaG",
		TemplateID: "Zc1x9QvB3nTm7LpA5sWd",
		Data: map[string]tasks.Value{
			"thing1":            {Value: "2024年4月物业费、水费、电费及公共能耗分摊"},
			"character_string2": {Value: "订单-42"},
		},
	}
	rules := tasks.Rules{AppIDs: []string{"wx8f3a1c2b4d5e6f70", "wx1111111111111111"}}

	var ve *tasks.ValidationError
	if errors.As(rules.Validate(p), &ve) {
		for _, fe := range ve.Errors {
			fmt.Println(fe)
		}
	}
	// Output:
	// appid: required when several accounts are configured
	// data.character_string2.value: must be ASCII only for character_string
	// data.thing1.value: 23 characters, over the limit of 20 for thing
}

func ExampleProducer_Enqueue() {
	prod := tasks.NewProducer(asynq.RedisClientOpt{Addr: "127.0.0.1:6379"}, tasks.ProducerOptions{})
	defer prod.Close()

	payload := &tasks.Payload{
		ID:         "invoice-2024-0042-due",
		ToUser:     "oVq2b5Kx9mTz1YpLw3Hc8dRf4EaG",
		TemplateID: "Zc1x9QvB3nTm7LpA5sWd",
		Data: map[string]tasks.Value{
			"thing1":  {Value: "2024年4月物业费"},
			"amount2": {Value: "¥1,280.00"},
		},
		ClientMsgID: "invoice-2024-0042-due",
	}
	_, err := prod.Enqueue(context.Background(), payload)
	switch {
	case errors.Is(err, tasks.ErrDuplicate):
		// Already queued or recently sent: nothing to do.
	case err != nil:
		fmt.Println("enqueue failed:", err)
	}
}
