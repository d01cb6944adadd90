-- AlterTable
ALTER TABLE "ApiKey" ADD COLUMN     "maxQueuedRuns" INTEGER,
ADD COLUMN     "maxRunningRuns" INTEGER,
ADD COLUMN     "maxStoredBytes" BIGINT;

-- CreateIndex
CREATE INDEX "Run_ownerId_status_idx" ON "Run"("ownerId", "status");

