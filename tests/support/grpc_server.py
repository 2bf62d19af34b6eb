"""A real gRPC server for the tests (grpcio with the standard grpc.health.v1 service).
Arguments: PORT [CERT KEY]. The whole server and "payments.v1.Payments" are SERVING,
"ledger.v1.Ledger" is NOT_SERVING; any other service is unknown (NOT_FOUND)."""
import sys, time
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

port = int(sys.argv[1])
server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
servicer = health.HealthServicer()
servicer.set("", health_pb2.HealthCheckResponse.SERVING)
servicer.set("payments.v1.Payments", health_pb2.HealthCheckResponse.SERVING)
servicer.set("ledger.v1.Ledger", health_pb2.HealthCheckResponse.NOT_SERVING)
health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
address = f"127.0.0.1:{port}"
if len(sys.argv) >= 4:
    with open(sys.argv[2], "rb") as c, open(sys.argv[3], "rb") as k:
        server.add_secure_port(address, grpc.ssl_server_credentials([(k.read(), c.read())]))
else:
    server.add_insecure_port(address)
server.start()
print("ready", flush=True)
try:
    while True:
        time.sleep(3600)
finally:
    server.stop(0)
