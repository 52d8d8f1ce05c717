package wechat

// TemplateMessage is the body of POST /cgi-bin/message/template/send
// (官方文档: 服务号 → 基础消息能力 → 模板消息 → 发送模板消息). Field names and
// JSON tags are WeChat's own.
type TemplateMessage struct {
	// ToUser is the recipient's openid under the sending account.
	ToUser string `json:"touser"`
	// TemplateID is one of the account's own template ids.
	TemplateID string `json:"template_id"`
	// URL is opened when the card is tapped; optional.
	URL string `json:"url,omitempty"`
	// MiniProgram, when set, opens a linked mini program instead of URL.
	MiniProgram *MiniProgram `json:"miniprogram,omitempty"`
	// Data maps each template placeholder key (thing1, amount2, ...) to
	// its value.
	Data map[string]DataItem `json:"data"`
	// ClientMsgID makes the send idempotent: WeChat sends one message per
	// (touser, client_msg_id) for at least 10 minutes.
	ClientMsgID string `json:"client_msg_id,omitempty"`
}

// MiniProgram names a mini program page linked to the account.
type MiniProgram struct {
	AppID    string `json:"appid"`
	PagePath string `json:"pagepath,omitempty"`
}

// DataItem is one placeholder's value. WeChat stopped honouring Color in
// May 2023; it is still sent when given.
type DataItem struct {
	Value string `json:"value"`
	Color string `json:"color,omitempty"`
}
