module github.com/athenaserving/asf/sdk/go

go 1.26.0

require github.com/gorilla/websocket v1.5.3

require go.uber.org/goleak v1.3.0
