# The image of docker-compose.yml's `sut` service: Debian's curl on the same
# base as h1mock's image, built locally so that the compose example needs
# no image from a registry (docker/sut.sh is mounted, not copied).
FROM debian:bookworm-slim
RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends curl \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/*
USER 10002:10002
