// Face clustering on Alibaba Cloud IMM from TypeScript, with the imm provider plugin.
// Setup, from this folder (generates the `@imm-faces/imm` SDK from the plugin's schema into ./sdks/imm):
//   npm install && pulumi package add ../../pulumi-resource-imm
//   pulumi config set imm:region cn-hangzhou
//   pulumi config set ossLocation oss://my-photo-bucket/family/
//   pulumi up
// The project's serviceRole is IMM's default, AliyunIMMDefaultRole, which must already exist in the account
// (IMM's console creates it when IMM is authorized); set `serviceRole` to use another existing role.
import * as pulumi from "@pulumi/pulumi";
import * as imm from "@imm-faces/imm"; // the SDK `pulumi package add` generates (schema language.nodejs.packageName)

const config = new pulumi.Config();
const name = `${pulumi.getProject()}-${pulumi.getStack()}-faces`;

const project = new imm.Project("project", { projectName: name, description: "photos of the family" });
const dataset = new imm.Dataset("dataset", { projectName: project.projectName, datasetName: "faces" });
const binding = new imm.Binding("binding", {
    projectName: project.projectName,
    datasetName: dataset.datasetName,
    uri: config.require("ossLocation"),
});
const clustering = new imm.FigureClusteringTask("clustering", {
    projectName: project.projectName,
    datasetName: dataset.datasetName,
    triggers: { photos: "v1" },
}, { dependsOn: [binding] });

// The stack-outputs contract `imm-faces verify --stack <stack>` reads.
export const project_name = project.projectName;
export const dataset_name = dataset.datasetName;
export const region = project.region;
export const endpoint = project.endpoint; // unset for the cloud; the emulator's when imm:endpoint names it
export const clustering_task_id = clustering.taskId;
export const binding_uris = [binding.uri];
